// One firmware update of one device, run inside the device's lifecycle workflow (the entity that
// already receives the device's events): no workflow of its own per device and version, which a
// 10,000-device rollout could not afford, and the lifecycle is the lock (one update at a time).
//
// The request is published retained, so an offline device gets it when it connects; the device's
// reports (bridge → `otaReport` signal) move the update on, each step with its own deadline; it
// succeeds only when the device runs the target version (`$fw/version`, as Postgres has it). A link
// about to expire is re-sent while the device has not started; whatever ends the update clears the
// retained request, so a device that reconnects later is not asked again.
import { condition, proxyLocalActivities, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEFAULT_STEP_TIMEOUTS, timeoutAfter, type UpdateRequest, type UpdateStatus, type UpdateView } from '../domain/device-update';
import type { OtaReportMessage } from '../domain/ota';
import { SA } from '../domain/search-attributes';

// Short Postgres and MQTT steps, in the workflow task. An update waits hours for a device anyway:
// they are retried for up to an hour through an outage rather than failing the update.
const quick = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** Re-send the request this long before its link expires, while the device has not started. */
const RESEND_BEFORE_EXPIRY_MS = 10 * 60_000;
/** After `updated`, how long the stored `$fw/version` may take to show the target (it is written by the bridge). */
const VERSION_SETTLE_MS = 10_000;
/** After a cancel is sent to a device that has started, how long it has to confirm. */
const CANCEL_CONFIRM_MS = 60_000;

export interface RunningUpdate extends UpdateView {
  req: UpdateRequest;
}

/** What the lifecycle shares with the runner: the update, the reports queued for it, a cancel, the block flag. */
export interface UpdateContext {
  deviceId: string;
  update: RunningUpdate;
  reports: (OtaReportMessage & { at: number })[];
  cancelRequested(): boolean;
  blocked(): boolean;
}

/** The update as Postgres shows it (the API and Grafana read it there). */
export function writeUpdate(deviceId: string, u: RunningUpdate, o: { fromVersion: string | null; finished: boolean }): Promise<void> {
  return quick.recordUpdateProgress({
    id: u.id,
    deviceId,
    releaseId: u.releaseId,
    version: u.version,
    fromVersion: o.fromVersion,
    status: u.status,
    step: u.step,
    progress: u.progress,
    error: u.error,
    rolloutId: u.req.rolloutId ?? null,
    requestedBy: u.req.actorId,
    finished: o.finished,
    at: new Date().toISOString(), // workflow time
  });
}

export async function runDeviceUpdate(c: UpdateContext): Promise<void> {
  const u = c.update;
  const t = { ...DEFAULT_STEP_TIMEOUTS, ...u.req.timeouts };
  let fromVersion: string | null = null;
  const record = (finished: boolean) => writeUpdate(c.deviceId, u, { fromVersion, finished });
  const finish = async (status: UpdateStatus, error: string | null = null) => {
    u.status = status;
    u.error = error;
    await quick.clearOtaRequest(c.deviceId);
    await record(true);
    if (status === 'succeeded') upsertSearchAttributes([{ key: SA.FirmwareVersion, value: u.version }]);
    c.reports.length = 0;
  };
  const runsTarget = async () => (await quick.currentFirmwareVersion(c.deviceId)) === u.version;

  fromVersion = await quick.currentFirmwareVersion(c.deviceId);
  if (fromVersion === u.version) return finish('already-installed');
  if (c.cancelRequested()) return finish('cancelled');
  u.status = 'in-progress';
  await record(false);
  const send = () => quick.publishOtaRequest({ deviceId: c.deviceId, updateId: u.id, releaseId: u.releaseId, version: u.version, size: u.req.size, sha256: u.req.sha256, signature: u.req.signature });
  let sentAt = Date.now();
  let { linkExpiresAt } = await send();
  let lastAt = Date.now();
  let cancelSentAt: number | null = null;

  for (;;) {
    const deadline = lastAt + timeoutAfter(u.step, t) * 1000;
    // Before the link expires (at most halfway through its life, so a short FIRMWARE_URL_TTL_S never makes a tight loop).
    const resendAt = u.step === null ? linkExpiresAt - Math.min(RESEND_BEFORE_EXPIRY_MS, (linkExpiresAt - sentAt) / 2) : Infinity;
    const cancelBy = cancelSentAt !== null ? cancelSentAt + CANCEL_CONFIRM_MS : Infinity;
    const until = Math.min(deadline, resendAt, cancelBy);
    const woke = await condition(() => c.reports.length > 0 || (c.cancelRequested() && cancelSentAt === null) || c.blocked(), Math.max(1, until - Date.now()));

    if (c.blocked()) return finish('failed', 'device-blocked'); // its login is gone: it could not report anyway
    if (c.cancelRequested() && cancelSentAt === null) {
      // Not started (maybe offline): clearing the retained request is enough. Started: the device is told.
      if (u.step === null) return finish('cancelled');
      await quick.publishOtaCancel({ deviceId: c.deviceId, updateId: u.id });
      cancelSentAt = Date.now();
      continue;
    }
    if (!woke) {
      if (cancelSentAt !== null && Date.now() >= cancelBy) return finish('cancelled'); // the device did not confirm: it is told no more
      if (Date.now() >= deadline) {
        // A firmware that reboots into the target without saying `updated` still succeeds.
        if ((u.step === 'rebooting' || u.step === 'updated') && (await runsTarget())) return finish('succeeded');
        return finish('failed', 'timeout');
      }
      sentAt = Date.now();
      ({ linkExpiresAt } = await send()); // a fresh link for the device that has not started yet
      continue;
    }

    const r = c.reports.shift()!;
    lastAt = Date.now();
    if (r.state === 'failed') return finish(r.error === 'cancelled' ? 'cancelled' : 'failed', r.error ?? 'failed');
    const moved = r.state !== u.step;
    const progress = r.progress ?? null;
    // Progress is written at each tenth, not at each percent: a row per step, not per packet.
    const worthWriting = moved || (progress !== null && Math.floor(progress / 10) !== Math.floor((u.progress ?? -10) / 10));
    u.step = r.state;
    u.progress = progress;
    if (r.state === 'updated') {
      for (let waited = 0; ; waited += 1000) {
        if (await runsTarget()) return finish('succeeded');
        if (waited >= VERSION_SETTLE_MS) return finish('failed', 'version-mismatch');
        await sleep(1000);
      }
    }
    if (worthWriting) await record(false);
  }
}
