// A bulk status change (a manufacturer marking a pallet or a whole batch `manufactured`):
// durable, so a crash of the API or the worker half-way loses nothing. Each device's own
// lifecycle workflow still decides, through its update validator, whether its move is legal.
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { MAX_REFUSED_DETAILS, type BulkStatusInput, type BulkStatusTally } from '../domain/messages';

/** Devices per activity; the activity sends their updates concurrently. */
export const BULK_CHUNK = 500;

const { openBulkOperation, applyStatusToChunk, recordBulkProgress } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  // Activities heartbeat every few dozen calls: a dead worker's chunk is retried within seconds.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

export async function bulkStatus(input: BulkStatusInput): Promise<BulkStatusTally> {
  const total = input.resume?.requested ?? (await openBulkOperation(input));
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
