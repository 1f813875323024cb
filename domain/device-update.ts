// One device's firmware update (issue 11): the statuses the API shows (design/contract.md "device
// update"), what the device lifecycle workflow carries while it runs one, and the step deadlines.
// Pure: the lifecycle workflow imports it.
import type { OtaState } from './ota';

export const UPDATE_STATUSES = ['queued', 'in-progress', 'succeeded', 'failed', 'cancelled', 'already-installed'] as const;
export type UpdateStatus = (typeof UPDATE_STATUSES)[number];
export const FINISHED_UPDATE_STATUSES = ['succeeded', 'failed', 'cancelled', 'already-installed'] as const satisfies readonly UpdateStatus[];
export const isFinishedUpdate = (s: UpdateStatus): boolean => (FINISHED_UPDATE_STATUSES as readonly UpdateStatus[]).includes(s);

/**
 * How long each step may take before the update fails, in seconds. `start`: from the request to
 * the device's first report; an offline device gets the request when it connects (it is retained),
 * so this is how long an offline device is waited for. The others: from one report to the next.
 */
export interface StepTimeouts {
  start: number;
  download: number;
  verify: number;
  install: number;
  reboot: number;
}
export const DEFAULT_STEP_TIMEOUTS: StepTimeouts = { start: 24 * 3600, download: 3600, verify: 600, install: 1800, reboot: 600 };

/** Which deadline runs after the device last reported `step` (null: nothing reported yet). */
export function timeoutAfter(step: OtaState | null, t: StepTimeouts): number {
  switch (step) {
    case null:
      return t.start;
    case 'downloading':
      return t.download;
    case 'downloaded':
    case 'verified':
      return t.verify;
    case 'installing':
      return t.install;
    default:
      return t.reboot; // rebooting, and `updated` waiting for the version to show
  }
}

/** Errors the platform itself ends an update with (the device's own are domain/ota.ts OTA_ERRORS). */
export const PLATFORM_UPDATE_ERRORS = ['timeout', 'version-mismatch', 'device-blocked', 'not-delivered'] as const;

export interface UpdateRequest {
  updateId: string;
  releaseId: string;
  version: string;
  size: number;
  sha256: string;
  signature: string;
  actorId: string | null;
  /** A rollout's ID when one started it. */
  rolloutId?: string | null;
  timeouts?: Partial<StepTimeouts>;
}

/** What the lifecycle workflow knows of its current (or last) update. */
export interface UpdateView {
  id: string;
  deviceId: string;
  releaseId: string;
  version: string;
  status: UpdateStatus;
  /** The device's last reported step. */
  step: OtaState | null;
  progress: number | null;
  error: string | null;
}
