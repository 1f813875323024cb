// Devices in Postgres: the list the API filters, the rows the lifecycle workflow writes.
import type { Db } from '../knex';
import type { Device, StatusChange, UpdatePolicy } from '../../domain/model';
import type { DeviceStatus } from '../../domain/device-status';
import { decodeCursor, toPage, type Page } from '../pagination';
import type { ShareRole } from '../../domain/roles';
import { sharedDeviceIds } from './shares';

interface DeviceRow {
  id: string;
  batch_id: string;
  seq: number;
  status: DeviceStatus;
  status_version: number;
  status_changed_at: Date;
  blocked: boolean;
  secret_generation: number;
  model: string | null;
  company_id: string | null;
  owner_id: string | null;
  online: boolean;
  last_seen_at: Date | null;
  firmware_version: string | null;
  update_policy: UpdatePolicy;
  created_at: Date;
}

const PUBLIC_COLUMNS: string[] = [
  'id', 'batch_id', 'seq', 'status', 'status_version', 'status_changed_at', 'blocked', 'secret_generation', 'model',
  'company_id', 'owner_id', 'online', 'last_seen_at', 'firmware_version', 'update_policy', 'created_at',
];

export function toDevice(r: DeviceRow): Device {
  return {
    id: r.id,
    batchId: r.batch_id,
    status: r.status,
    statusChangedAt: r.status_changed_at.toISOString(),
    blocked: r.blocked,
    model: r.model,
    companyId: r.company_id,
    ownerId: r.owner_id,
    online: r.online,
    lastSeenAt: r.last_seen_at ? r.last_seen_at.toISOString() : null,
    firmwareVersion: r.firmware_version,
    updatePolicy: r.update_policy,
    createdAt: r.created_at.toISOString(),
  };
}

export interface NewDevice {
  id: string;
  seq: number;
  secretHash: string;
  pairingCodeHash: string;
}

/**
 * Inserts a chunk of a batch's devices in one statement. Rows whose (batch_id, seq) already
 * exist (a retried chunk) or whose ID is already taken (a random collision) are skipped;
 * the caller learns which seqs were not inserted and which of those still lack a device.
 */
export async function insertDevices(
  db: Db,
  batch: { id: string; model: string | null; companyId: string | null },
  devices: NewDevice[],
): Promise<{ missingSeqs: number[] }> {
  const inserted = await db.raw<{ rows: { seq: number }[] }>(
    `INSERT INTO devices (id, batch_id, seq, secret_hash, pairing_code_hash, model, company_id)
     SELECT d.id, ?, d.seq, d.secret_hash, d.pairing_code_hash, ?, ?
       FROM unnest(?::text[], ?::int[], ?::text[], ?::text[]) AS d(id, seq, secret_hash, pairing_code_hash)
     ON CONFLICT DO NOTHING
     RETURNING seq`,
    [
      batch.id, batch.model, batch.companyId,
      devices.map((d) => d.id), devices.map((d) => d.seq), devices.map((d) => d.secretHash), devices.map((d) => d.pairingCodeHash),
    ],
  );
  const done = new Set(inserted.rows.map((r) => r.seq));
  const skipped = devices.map((d) => d.seq).filter((s) => !done.has(s));
  if (skipped.length === 0) return { missingSeqs: [] };
  const existing = await db('devices').where({ batch_id: batch.id }).whereIn('seq', skipped).pluck('seq');
  const have = new Set(existing.map(Number));
  return { missingSeqs: skipped.filter((s) => !have.has(s)) };
}

/** What a lifecycle workflow starts from, for a batch's devices with seq in [fromSeq, toSeq). */
export async function lifecycleSeeds(
  db: Db,
  batchId: string,
  fromSeq: number,
  toSeq: number,
): Promise<{ id: string; status: DeviceStatus; status_version: number; blocked: boolean }[]> {
  return db('devices')
    .where({ batch_id: batchId })
    .andWhere('seq', '>=', fromSeq)
    .andWhere('seq', '<', toSeq)
    .orderBy('seq')
    .select('id', 'status', 'status_version', 'blocked');
}

/** What a lost device workflow is re-created from: the device's own row (null when there is none). */
export async function lifecycleSeed(
  db: Db,
  id: string,
): Promise<{ id: string; status: DeviceStatus; status_version: number; blocked: boolean; batch_id: string; company_id: string | null; model: string | null } | null> {
  return (await db('devices').where({ id }).first('id', 'status', 'status_version', 'blocked', 'batch_id', 'company_id', 'model')) ?? null;
}

export async function getDevice(db: Db, id: string): Promise<Device | null> {
  const row: DeviceRow | undefined = await db('devices').where({ id }).first(PUBLIC_COLUMNS);
  return row ? toDevice(row) : null;
}

/** Who a device belongs to and what it is, for the policy and property visibility, by device ID. */
export async function devicePartiesOf(db: Db, ids: readonly string[]): Promise<Map<string, { companyId: string | null; ownerId: string | null; model: string | null }>> {
  if (ids.length === 0) return new Map();
  const rows = (await db('devices').whereIn('id', ids as string[]).select('id', 'company_id', 'owner_id', 'model')) as { id: string; company_id: string | null; owner_id: string | null; model: string | null }[];
  return new Map(rows.map((r) => [r.id, { companyId: r.company_id, ownerId: r.owner_id, model: r.model }]));
}

export interface DeviceFilter {
  /** From the policy (api/http/policy.ts listScope): null = every device. */
  scope: { companyIds: string[]; ownerId: string | null; shareRoles: readonly ShareRole[]; userId: string } | null;
  status?: DeviceStatus;
  batchId?: string;
  online?: boolean;
  limit: number;
  cursor?: string;
}

export async function listDevices(db: Db, f: DeviceFilter): Promise<Page<Device>> {
  const q = db('devices').select(PUBLIC_COLUMNS).orderBy('id').limit(f.limit + 1);
  if (f.scope) {
    const { companyIds, ownerId, shareRoles, userId } = f.scope;
    q.where((w) => {
      w.whereIn('company_id', companyIds);
      if (ownerId) w.orWhere('owner_id', ownerId);
      if (shareRoles.length > 0) w.orWhereIn('id', sharedDeviceIds(db, userId, shareRoles));
    });
  }
  if (f.status) q.where('status', f.status);
  if (f.batchId) q.where('batch_id', f.batchId);
  if (f.online !== undefined) q.where('online', f.online);
  if (f.cursor) q.where('id', '>', decodeCursor(f.cursor, ['string'] as const)[0]);
  const rows: DeviceRow[] = await q;
  return toPage(rows, f.limit, toDevice, (r) => [r.id]);
}

export interface ExportDevice {
  id: string;
  seq: number;
  status: DeviceStatus;
  secret_generation: number;
  model: string | null;
  created_at: Date;
}

/** Devices of a batch with seq > afterSeq, in seq order: one short keyset query on (batch_id, seq). */
export async function batchDevicesAfter(db: Db, batchId: string, afterSeq: number, limit: number): Promise<ExportDevice[]> {
  return db('devices')
    .where({ batch_id: batchId })
    .andWhere('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .select('id', 'seq', 'status', 'secret_generation', 'model', 'created_at');
}

/**
 * For exports: a batch's devices in seq order, page by page. Each page is its own query, so no
 * pooled connection is held while the caller (a client downloading at its own pace) is slow.
 */
export async function* streamBatchDevices(db: Db, batchId: string, pageSize = 1000): AsyncGenerator<ExportDevice> {
  let after = -1;
  for (;;) {
    const rows = await batchDevicesAfter(db, batchId, after, pageSize);
    yield* rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.seq;
  }
}

/**
 * Writes an accepted status change. `status_version` orders the writes: a late retry of an
 * older change never overwrites a newer one, and a repeated write of the same change is a no-op.
 */
export async function applyStatusChange(db: Db, c: StatusChange): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('device_status_events')
      .insert({ device_id: c.deviceId, version: c.version, from_status: c.from, to_status: c.to, actor: c.actor, actor_id: c.actorId, reason: c.reason, at: c.at })
      .onConflict(['device_id', 'version'])
      .ignore();
    await trx('devices')
      .where({ id: c.deviceId })
      .andWhere('status_version', '<', c.version)
      .update({ status: c.to, status_version: c.version, status_changed_at: c.at });
  });
}

/** Which generation of derived credentials the device holds (bumped when they are re-keyed). */
export async function secretGeneration(db: Db, id: string): Promise<number | null> {
  const row = await db('devices').where({ id }).first('secret_generation');
  return row ? row.secret_generation : null;
}
