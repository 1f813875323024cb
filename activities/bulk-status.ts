// Activities of the bulk status workflow: each device's change goes through that device's own
// lifecycle workflow (its validator decides), with an update ID per (operation, device) so a
// retried chunk is answered from Temporal's record instead of being applied again.
import type { Client } from '@temporalio/client';
import type { Db } from '../db/knex';
import { batchReadiness, getBatch } from '../db/repositories/batches';
import { insertBulkOperation, saveBulkProgress } from '../db/repositories/bulk-operations';
import { AppError, NotFoundError } from '../domain/errors';
import type { BulkStatusInput, BulkStatusTally, RefusedDevice } from '../domain/messages';
import { transitionDevice } from '../temporal/device-workflows';
import { mapConcurrent } from './concurrency';
import { withHeartbeat } from './heartbeat';

export const UPDATE_CONCURRENCY = 64;

export function bulkStatusActivities({ db, temporal }: { db: Db; temporal: Client }) {
  return {
    /** Whether every device of the batch exists and has its workflow; an unknown batch is permanent. */
    async isBatchReady(batchId: string): Promise<boolean> {
      const r = await batchReadiness(db, batchId);
      if (r === null) throw new NotFoundError('batch', batchId);
      return r === 'ready';
    },

    /** Records the operation and returns how many devices it covers. */
    async openBulkOperation(input: BulkStatusInput): Promise<number> {
      // The batch's planned count, not its rows so far: a change may arrive while it is being built.
      let requested = input.deviceIds?.length;
      if (requested === undefined) {
        const batch = await getBatch(db, input.batchId);
        if (!batch) throw new NotFoundError('batch', input.batchId);
        requested = batch.count;
      }
      await insertBulkOperation(db, { id: input.operationId, batchId: input.batchId, targetStatus: input.to, requested, createdBy: input.actorId });
      return requested;
    },

    async applyStatusToChunk(a: BulkStatusInput & { chunk: number; chunkSize: number }): Promise<{ changed: number; unchanged: number; refused: RefusedDevice[] }> {
      const refused: RefusedDevice[] = [];
      let ids: string[];
      if (a.deviceIds) {
        const inBatch = new Set<string>(await db('devices').where({ batch_id: a.batchId }).whereIn('id', a.deviceIds).pluck('id'));
        ids = a.deviceIds.filter((id) => inBatch.has(id));
        for (const id of a.deviceIds) {
          if (!inBatch.has(id)) refused.push({ deviceId: id, code: 'not_in_batch', message: `device '${id}' is not in batch '${a.batchId}'` });
        }
      } else {
        ids = await db('devices').where({ batch_id: a.batchId }).orderBy('seq').offset(a.chunk * a.chunkSize).limit(a.chunkSize).pluck('id');
      }
      let changed = 0;
      let unchanged = 0;
      let done = 0;
      await withHeartbeat(() => done, (signal) => mapConcurrent(ids, UPDATE_CONCURRENCY, async (deviceId) => {
        try {
          const r = await transitionDevice(temporal, deviceId, { to: a.to, actor: a.actor, actorId: a.actorId, reason: `bulk operation ${a.operationId}` }, `${a.operationId}:${deviceId}`);
          if (r.changed) changed++;
          else unchanged++;
        } catch (err) {
          // A refusal is an outcome to report; anything else (Temporal unreachable) fails the attempt.
          if (!(err instanceof AppError) || err.status >= 500) throw err;
          refused.push({ deviceId, code: err.code, message: err.message });
        }
        done++;
      }, signal));
      return { changed, unchanged, refused };
    },

    async recordBulkProgress(a: { operationId: string; tally: BulkStatusTally; done: boolean }): Promise<void> {
      await saveBulkProgress(db, a.operationId, a.tally, a.done);
    },
  };
}
