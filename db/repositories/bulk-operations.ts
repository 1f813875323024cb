// Bulk status operations: their progress and outcome, readable after the workflow is gone.
import type { Db } from '../knex';
import type { BulkStatusTally, RefusedDevice } from '../../domain/messages';
import type { DeviceStatus } from '../../domain/device-status';

export interface BulkOperation extends Omit<BulkStatusTally, 'refusedCount'> {
  id: string;
  batchId: string;
  targetStatus: DeviceStatus;
  state: 'running' | 'completed';
  refusedCount: number;
  createdAt: string;
  finishedAt: string | null;
}

export async function insertBulkOperation(
  db: Db,
  op: { id: string; batchId: string; targetStatus: DeviceStatus; requested: number; createdBy: string | null },
): Promise<void> {
  await db('bulk_operations')
    .insert({ id: op.id, batch_id: op.batchId, target_status: op.targetStatus, requested: op.requested, created_by: op.createdBy })
    .onConflict('id')
    .ignore();
}

/** Overwrites with the workflow's running tally: the workflow is the one source of the counts. */
export async function saveBulkProgress(db: Db, id: string, t: BulkStatusTally, done: boolean): Promise<void> {
  await db('bulk_operations')
    .where({ id })
    .update({
      changed: t.changed,
      unchanged: t.unchanged,
      refused: JSON.stringify({ count: t.refusedCount, details: t.refused }),
      ...(done ? { state: 'completed', finished_at: db.raw('COALESCE(finished_at, now())') } : {}),
    });
}

export async function getBulkOperation(db: Db, id: string): Promise<BulkOperation | null> {
  const r = await db('bulk_operations').where({ id }).first();
  if (!r) return null;
  const refused = r.refused as { count: number; details: RefusedDevice[] };
  return {
    id: r.id,
    batchId: r.batch_id,
    targetStatus: r.target_status,
    state: r.state,
    requested: r.requested,
    changed: r.changed,
    unchanged: r.unchanged,
    refusedCount: refused.count,
    refused: refused.details,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
  };
}
