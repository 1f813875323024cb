// Firmware updates of devices (db/migrations/009_device_updates.ts). Written only by the device
// lifecycle workflow's activities, each write idempotent: the same update and status again changes
// nothing, and a finished update is never reopened by a late write.
import type { Db } from '../knex';
import { decodeCursor, toPage, type Page } from '../pagination';
import type { UpdateStatus } from '../../domain/device-update';
import type { OtaState } from '../../domain/ota';

export interface DeviceUpdate {
  id: string;
  deviceId: string;
  releaseId: string;
  version: string;
  fromVersion: string | null;
  status: UpdateStatus;
  step: OtaState | null;
  progress: number | null;
  error: string | null;
  rolloutId: string | null;
  requestedBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

interface Row {
  id: string;
  device_id: string;
  release_id: string;
  version: string;
  from_version: string | null;
  status: UpdateStatus;
  step: OtaState | null;
  progress: number | null;
  error: string | null;
  rollout_id: string | null;
  requested_by: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

const toUpdate = (r: Row): DeviceUpdate => ({
  id: r.id,
  deviceId: r.device_id,
  releaseId: r.release_id,
  version: r.version,
  fromVersion: r.from_version,
  status: r.status,
  step: r.step,
  progress: r.progress,
  error: r.error,
  rolloutId: r.rollout_id,
  requestedBy: r.requested_by,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
});

export interface UpdateProgress {
  id: string;
  deviceId: string;
  releaseId: string;
  version: string;
  fromVersion?: string | null;
  status: UpdateStatus;
  step: OtaState | null;
  progress: number | null;
  error: string | null;
  rolloutId?: string | null;
  requestedBy?: string | null;
  finished: boolean;
  /** Workflow time of the change. */
  at: string;
}

/** Creates the row or moves it on; a finished row stays as it finished. */
export async function recordUpdateProgress(db: Db, p: UpdateProgress): Promise<void> {
  await db.raw(
    `INSERT INTO device_updates (id, device_id, release_id, version, from_version, status, step, progress, error, rollout_id, requested_by, created_at, updated_at, finished_at)
     VALUES (:id, :deviceId, :releaseId, :version, :fromVersion, :status, :step, :progress, :error, :rolloutId, :requestedBy, :at, :at, :finishedAt)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, step = EXCLUDED.step, progress = EXCLUDED.progress, error = EXCLUDED.error,
       from_version = COALESCE(device_updates.from_version, EXCLUDED.from_version), updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at
     WHERE device_updates.finished_at IS NULL`,
    { ...p, fromVersion: p.fromVersion ?? null, rolloutId: p.rolloutId ?? null, requestedBy: p.requestedBy ?? null, finishedAt: p.finished ? p.at : null },
  );
}

export async function getDeviceUpdate(db: Db, deviceId: string, id: string): Promise<DeviceUpdate | null> {
  const row: Row | undefined = await db('device_updates').where({ id, device_id: deviceId }).first();
  return row ? toUpdate(row) : null;
}

/** A device's updates, newest first. */
export async function listDeviceUpdates(db: Db, deviceId: string, o: { limit: number; cursor?: string }): Promise<Page<DeviceUpdate>> {
  const q = db('device_updates').where({ device_id: deviceId }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(o.limit + 1);
  if (o.cursor) {
    const [at, id] = decodeCursor(o.cursor, ['timestamp', 'string'] as const);
    q.whereRaw('(created_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows: Row[] = await q;
  return toPage(rows, o.limit, toUpdate, (r) => [r.created_at.toISOString(), r.id]);
}
