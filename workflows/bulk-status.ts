// A bulk status change (a manufacturer marking a pallet or a whole batch `manufactured`):
// durable, so a crash of the API or the worker half-way loses nothing. Each device's own
// lifecycle workflow still decides, through its update validator, whether its move is legal.
// A change sent while the batch is still being provisioned waits until its devices are ready.
import { continueAsNew, patched, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { fanoutTaskQueue, MAX_REFUSED_DETAILS, type BulkStatusInput, type BulkStatusTally } from '../domain/messages';

/** Devices per activity; the activity sends their updates concurrently. */
export const BULK_CHUNK = 500;
/** Patch: wait for the batch to be ready before applying (before it, the API answered 409). */
export const PATCH_WAIT_FOR_BATCH = 'bulk-status-waits-for-batch';
/** How long a change waits for its batch; then it applies to the devices there are. */
export const BATCH_READY_WAIT_MS = 30 * 60_000;

const bookkeeping = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 50 },
} as const;
const { openBulkOperation, recordBulkProgress, isBatchReady } = proxyActivities<Activities>(bookkeeping);

/** Bounded wait, durable timers with backoff: a few hundred events at most. */
async function untilBatchReady(batchId: string): Promise<void> {
  const until = Date.now() + BATCH_READY_WAIT_MS; // workflow time: deterministic
  for (let wait = 500; !(await isBatchReady(batchId)) && Date.now() < until; wait = Math.min(wait * 2, 10_000)) await sleep(wait);
}

export async function bulkStatus(input: BulkStatusInput): Promise<BulkStatusTally> {
  const { applyStatusToChunk } = proxyActivities<Activities>({
    taskQueue: fanoutTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '5 minutes',
    // Activities heartbeat every 2 s: a dead worker's chunk is retried within seconds.
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 50 },
  });
  const total = input.resume?.requested ?? (await openBulkOperation(input));
  if (!input.resume && patched(PATCH_WAIT_FOR_BATCH)) await untilBatchReady(input.batchId);
  const tally: BulkStatusTally = input.resume ?? { requested: total, changed: 0, unchanged: 0, refusedCount: 0, refused: [] };
  const chunks = Math.ceil(total / BULK_CHUNK);
  for (let chunk = input.resume?.nextChunk ?? 0; chunk < chunks; chunk++) {
    const r = await applyStatusToChunk({ ...input, deviceIds: input.deviceIds?.slice(chunk * BULK_CHUNK, (chunk + 1) * BULK_CHUNK), chunk, chunkSize: BULK_CHUNK });
    tally.changed += r.changed;
    tally.unchanged += r.unchanged;
    tally.refusedCount += r.refused.length;
    tally.refused.push(...r.refused.slice(0, MAX_REFUSED_DETAILS - tally.refused.length));
    const done = chunk + 1 === chunks;
    await recordBulkProgress({ operationId: input.operationId, tally, done });
    if (!done && workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof bulkStatus>({ ...input, resume: { ...tally, nextChunk: chunk + 1 } });
    }
  }
  if (chunks === 0) await recordBulkProgress({ operationId: input.operationId, tally, done: true });
  return tally;
}
