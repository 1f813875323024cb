// Firmware releases: the one definition of their channels and limits (issue 11).

/** A release starts in `staging` (the staging cohort, explicit rollouts); `stable` feeds auto-updates. */
export const CHANNELS = ['staging', 'stable'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A device model's name, as batches carry it. */
export const MODEL_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_NOTES_LENGTH = 10_000;
/** Default largest image (FIRMWARE_MAX_BYTES): embedded Linux updates run to hundreds of MB, MCU images to a few. */
export const DEFAULT_FIRMWARE_MAX_BYTES = 256 * 1024 * 1024;
/** How long a device's download link works (FIRMWARE_URL_TTL_S): long enough for a slow link to fetch and resume. */
export const DEFAULT_DOWNLOAD_URL_TTL_S = 6 * 3600;

export interface FirmwareRelease {
  id: string;
  companyId: string;
  model: string;
  version: string;
  size: number;
  sha256: string;
  signature: string;
  keyFingerprint: string;
  channel: Channel;
  notes: string | null;
  createdBy: string;
  createdAt: string;
  promotedAt: string | null;
  promotedBy: string | null;
}
