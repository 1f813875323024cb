// Builds a batch: the batch row, then every device (IDs and credentials, in idempotent chunks),
// then every device's lifecycle workflow. A worker crash half-way resumes from the last
// completed chunk; chunk activities are idempotent, so a repeated chunk creates nothing twice.
import { allHandlersFinished, condition, continueAsNew, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { acceptBatchUpdate, fanoutTaskQueue, type BatchProvisioningInput } from '../domain/messages';
import type { Batch } from '../domain/model';

/** Patch: workflow starts in a sliding window of chunks instead of waves. */
export const PATCH_SLIDING_STARTS = 'sliding-start-window';

/** Patch: the devices' logins go to the broker (per chunk, while their workflows start). */
export const PATCH_SYNC_CREDENTIALS = 'sync-broker-credentials';

/** Devices created per activity: one multi-row insert each. */
export const CREATE_CHUNK = 2000;
/** Lifecycle workflows started per activity (the activity starts them concurrently). */
export const START_CHUNK = 500;
/** Start activities in flight at once: the dev server's start rate needs many calls in flight. */
export const START_PARALLELISM = 4;

// Short bookkeeping on the main queue: the batch row is what a waiting POST /batches answers with.
// Bounded: about 25 minutes of retries through a Postgres outage, then the workflow fails.
const { createBatchRecord, recordWorkflowsStarted } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 50 },
});

/** Long work on the fan-out queue, so that it never holds the main queue's activity slots. */
function fanoutActivities() {
  return proxyActivities<Activities>({
    taskQueue: fanoutTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '5 minutes',
    // Activities heartbeat every 2 s: a dead worker's chunk is retried within seconds.
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 50 },
  });
}

export async function batchProvisioning(input: BatchProvisioningInput): Promise<void> {
  const { batch } = input;
  const { createDevices, startLifecycleWorkflows, syncBatchCredentials } = fanoutActivities();
  let record: Promise<Batch> | undefined;
  const ensureRecord = () => (record ??= createBatchRecord(batch));

  setHandler(acceptBatchUpdate, () => ensureRecord());
  await ensureRecord();

  let devicesCreated = input.progress?.devicesCreated ?? 0;
  let workflowsStarted = input.progress?.workflowsStarted ?? 0;
  let credentialsSynced = input.progress?.credentialsSynced ?? 0;
  let syncing: Promise<void> = Promise.resolve();
  const rollOver = async () => {
    if (!workflowInfo().continueAsNewSuggested) return;
    await syncing;
    await condition(allHandlersFinished);
    await continueAsNew<typeof batchProvisioning>({ batch, progress: { devicesCreated, workflowsStarted, credentialsSynced } });
  };

  while (devicesCreated < batch.count) {
    const to = Math.min(batch.count, devicesCreated + CREATE_CHUNK);
    await createDevices({ batchId: batch.id, model: batch.model, companyId: batch.companyId, fromSeq: devicesCreated, toSeq: to, total: batch.count });
    devicesCreated = to;
    await rollOver();
  }

  if (patched(PATCH_SYNC_CREDENTIALS)) {
    // Off the CSV's path (the devices exist, the CSV can be read) and beside the workflow starts.
    // Nothing waits for it but `manufactured`, which checks each device itself.
    syncing = (async () => {
      while (credentialsSynced < batch.count) {
        const to = Math.min(batch.count, credentialsSynced + CREATE_CHUNK);
        await syncBatchCredentials({ batchId: batch.id, fromSeq: credentialsSynced, toSeq: to });
        credentialsSynced = to;
      }
    })();
    syncing.catch(() => undefined); // awaited (and failing the workflow) at the end or before a roll-over
  }

  if (patched(PATCH_SLIDING_STARTS)) {
    // A sliding window: a new chunk starts as soon as any chunk finishes, so the server always
    // has START_PARALLELISM chunks' starts in flight (waves left it idle at each wave's tail).
    // Progress is the completed prefix; a chunk after it that finished is redone after a
    // continue-as-new, which its idempotent starts make harmless.
    const inFlight = new Map<number, Promise<number>>();
    const finished = new Set<number>();
    let next = workflowsStarted;
    while (workflowsStarted < batch.count) {
      const rolling = workflowInfo().continueAsNewSuggested;
      while (!rolling && inFlight.size < START_PARALLELISM && next < batch.count) {
        const from = next;
        next = Math.min(batch.count, from + START_CHUNK);
        inFlight.set(from, startLifecycleWorkflows({ batchId: batch.id, fromSeq: from, toSeq: next }).then(() => from));
      }
      // Rolling over with nothing in flight: what the next run carries is exactly the prefix.
      if (inFlight.size === 0) {
        await rollOver();
        continue;
      }
      const from = await Promise.race(inFlight.values());
      inFlight.delete(from);
      finished.add(from);
      const before = workflowsStarted;
      while (finished.delete(workflowsStarted)) workflowsStarted = Math.min(batch.count, workflowsStarted + START_CHUNK);
      if (workflowsStarted > before) await recordWorkflowsStarted({ batchId: batch.id, started: workflowsStarted, complete: workflowsStarted >= batch.count });
    }
  } else {
    while (workflowsStarted < batch.count) {
      const wave: Promise<void>[] = [];
      let end = workflowsStarted;
      for (let i = 0; i < START_PARALLELISM && end < batch.count; i++) {
        const from = end;
        end = Math.min(batch.count, from + START_CHUNK);
        wave.push(startLifecycleWorkflows({ batchId: batch.id, fromSeq: from, toSeq: end }));
      }
      await Promise.all(wave);
      workflowsStarted = end;
      await recordWorkflowsStarted({ batchId: batch.id, started: workflowsStarted, complete: workflowsStarted >= batch.count });
      await rollOver();
    }
  }
  await syncing;
  await condition(allHandlersFinished);
}
