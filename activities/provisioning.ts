// Activities of the batch provisioning workflow. Each is idempotent: a retry after a crash
// finds what the first attempt wrote and finishes the job without doing anything twice.
import type { Client } from '@temporalio/client';
import type { CredentialDeriver } from '../domain/credentials';
import { NotFoundError } from '../domain/errors';
import { newDeviceId } from '../domain/ids';
import { deviceTaskQueue } from '../domain/messages';
import type { Batch, NewBatch } from '../domain/model';
import type { Db } from '../db/knex';
import { getBatch, insertBatch, recordDevicesCreated, recordWorkflowsStarted as saveWorkflowsStarted } from '../db/repositories/batches';
import { insertDevices, lifecycleSeeds, type NewDevice } from '../db/repositories/devices';
import { startDeviceLifecycle } from '../temporal/device-workflows';
import { isTemporalUnreachable } from '../temporal/errors';
import { mapConcurrent } from './concurrency';
import { withHeartbeat } from './heartbeat';

export interface ProvisioningDeps {
  db: Db;
  temporal: Client;
  taskQueue: string;
  credentials: CredentialDeriver;
}

/** Workflow starts in flight per activity (times START_PARALLELISM): more only queues on the server, in front of other batches. */
export const START_CONCURRENCY = 16;
/** Tries per workflow start that the server timed out, before the activity attempt fails. */
const START_TRIES = 3;

export function provisioningActivities({ db, temporal, taskQueue, credentials }: ProvisioningDeps) {
  function newDevice(seq: number): NewDevice {
    const id = newDeviceId();
    const c = credentials.device(id);
    return { id, seq, secretHash: c.secretHash, pairingCodeHash: c.pairingCodeHash };
  }

  return {
    async createBatchRecord(batch: NewBatch): Promise<Batch> {
      return insertBatch(db, batch);
    },

    /** Creates the devices with seq in [fromSeq, toSeq). A (batch, seq) that exists is kept as it is. */
    async createDevices(a: { batchId: string; model: string | null; companyId: string | null; fromSeq: number; toSeq: number; total: number }): Promise<void> {
      let seqs = Array.from({ length: a.toSeq - a.fromSeq }, (_, i) => a.fromSeq + i);
      await withHeartbeat(() => ({ missing: seqs.length }), async () => {
        // 60-bit random IDs collide about never; when one does, that seq simply draws again.
        for (let round = 0; seqs.length > 0; round++) {
          if (round === 5) throw new Error(`could not draw unique device IDs for ${seqs.length} devices`);
          ({ missingSeqs: seqs } = await insertDevices(db, { id: a.batchId, model: a.model, companyId: a.companyId }, seqs.map(newDevice)));
        }
        await recordDevicesCreated(db, a.batchId, a.toSeq, a.toSeq >= a.total);
      });
    },

    /** Starts the lifecycle workflow of every device with seq in [fromSeq, toSeq), from its Postgres state. */
    async startLifecycleWorkflows(a: { batchId: string; fromSeq: number; toSeq: number }): Promise<void> {
      const batch = await getBatch(db, a.batchId);
      if (!batch) throw new NotFoundError('batch', a.batchId);
      const rows = await lifecycleSeeds(db, a.batchId, a.fromSeq, a.toSeq);
      let done = 0;
      await withHeartbeat(() => done, (signal) => mapConcurrent(rows, START_CONCURRENCY, async (d) => {
        const input = { deviceId: d.id, batchId: a.batchId, companyId: batch.companyId, model: batch.model, state: { status: d.status, blocked: d.blocked, version: d.status_version } };
        // A busy server times single calls out: retry those here rather than redo the whole chunk.
        for (let attempt = 1; ; attempt++) {
          try {
            await startDeviceLifecycle(temporal, deviceTaskQueue(taskQueue), input);
            break;
          } catch (err) {
            if (attempt >= START_TRIES || !isTemporalUnreachable(err)) throw err;
          }
        }
        done++;
      }, signal));
    },

    async recordWorkflowsStarted(a: { batchId: string; started: number; complete: boolean }): Promise<void> {
      await saveWorkflowsStarted(db, a.batchId, a.started, a.complete);
    },
  };
}
