// Batches in Postgres.
import type { Db } from '../knex';
import type { Batch, NewBatch } from '../../domain/model';
import type { DeviceStatus } from '../../domain/device-status';
import { DEVICE_STATUSES } from '../../domain/device-status';
import { decodeCursor, toPage, type Page } from '../pagination';

interface BatchRow {
  id: string;
  name: string;
  count: number;
  info: string | null;
  color: string | null;
  model: string | null;
  company_id: string | null;
  provisioning_status: 'provisioning' | 'ready';
  devices_created: number;
  workflows_started: number;
  created_at: Date;
  devices_ready_at: Date | null;
  ready_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toBatch(r: BatchRow): Batch {
  return {
    id: r.id,
    name: r.name,
    count: r.count,
    info: r.info,
    color: r.color,
    model: r.model,
    companyId: r.company_id,
    provisioning: {
      status: r.provisioning_status,
      devicesCreated: r.devices_created,
      workflowsStarted: r.workflows_started,
      devicesReadyAt: iso(r.devices_ready_at),
      readyAt: iso(r.ready_at),
    },
    createdAt: r.created_at.toISOString(),
  };
}

/** Idempotent: a retried activity finds the row it wrote before. */
export async function insertBatch(db: Db, b: NewBatch): Promise<Batch> {
  await db('batches')
    .insert({ id: b.id, name: b.name, count: b.count, info: b.info, color: b.color, model: b.model, company_id: b.companyId, created_by: b.createdBy })
    .onConflict('id')
    .ignore();
  return (await getBatch(db, b.id))!;
}

export async function getBatch(db: Db, id: string): Promise<Batch | null> {
  const row = await db<BatchRow>('batches').where({ id }).first();
  return row ? toBatch(row) : null;
}

/** 'ready' once every device exists and has its lifecycle workflow; null for an unknown batch. */
export async function batchReadiness(db: Db, id: string): Promise<'provisioning' | 'ready' | null> {
  const row = await db<BatchRow>('batches').where({ id }).first('provisioning_status');
  return row ? row.provisioning_status : null;
}

/** Newest first; `companyIds` (when given) limits the list to those companies' batches. */
export async function listBatches(db: Db, opts: { limit: number; cursor?: string; companyIds?: string[] }): Promise<Page<Batch>> {
  const q = db<BatchRow>('batches').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(opts.limit + 1);
  if (opts.companyIds) q.whereIn('company_id', opts.companyIds);
  if (opts.cursor) {
    const [at, id] = decodeCursor(opts.cursor, ['timestamp', 'string'] as const);
    q.whereRaw('(created_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows = await q;
  return toPage(rows, opts.limit, toBatch, (r) => [r.created_at.toISOString(), r.id]);
}

export async function countDevicesByStatus(db: Db, batchId: string): Promise<Record<DeviceStatus, number>> {
  const rows = await db('devices').where({ batch_id: batchId }).select('status').count<{ status: DeviceStatus; count: string }[]>('* as count').groupBy('status');
  const counts = Object.fromEntries(DEVICE_STATUSES.map((s) => [s, 0])) as Record<DeviceStatus, number>;
  for (const r of rows) counts[r.status] = Number(r.count);
  return counts;
}

/** Progress counters only move forward, so a retried or reordered write cannot undo progress. */
export async function recordDevicesCreated(db: Db, id: string, created: number, complete: boolean): Promise<void> {
  await db('batches')
    .where({ id })
    .update({
      devices_created: db.raw('GREATEST(devices_created, ?)', [created]),
      ...(complete ? { devices_ready_at: db.raw('COALESCE(devices_ready_at, now())') } : {}),
    });
}

export async function recordWorkflowsStarted(db: Db, id: string, started: number, complete: boolean): Promise<void> {
  await db('batches')
    .where({ id })
    .update({
      workflows_started: db.raw('GREATEST(workflows_started, ?)', [started]),
      ...(complete ? { provisioning_status: 'ready', ready_at: db.raw('COALESCE(ready_at, now())') } : {}),
    });
}
