// A worker stopped (SIGTERM) while it starts a batch's workflows lets the activities it is running
// finish (WORKER_SHUTDOWN_GRACE_MS) instead of abandoning them to a retry; with no grace time the
// same stop cancels them, which is what the first case must not show.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import type { Batch } from '../domain/model';
import { batchWorkflowId } from '../domain/messages';
import { eventually, startStack, type Stack } from './support/stack';
import { exited, spawnWorker } from './support/worker-process';

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
const EventType = temporal.api.enums.v1.EventType;

let s: Stack;
let dataDir: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-drain-'));
  s = await startStack({ worker: false, acceptWaitMs: 60_000 });
});
afterAll(async () => {
  await s.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Starts a batch on a worker process, stops that worker with SIGTERM while workflow starts are running; returns what was running then. */
async function stopMidBatch(graceMs: number) {
  const worker = spawnWorker(s.taskQueue, dataDir, { WORKER_SHUTDOWN_GRACE_MS: String(graceMs) });
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: `drain ${graceMs}`, count: 1500 } });
  expect(r.status).toBe(201);
  const batch = (await r.json()) as Batch;
  const handle = s.temporal.workflow.getHandle(batchWorkflowId(batch.id));
  const running = await eventually(async () => {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const ids = pending.filter((a) => a.activityType?.name === 'startLifecycleWorkflows' && a.state === STARTED).map((a) => a.activityId!);
    return ids.length > 0 ? ids : null;
  }, 90_000, 20);
  worker.kill('SIGTERM');
  await exited(worker);
  const after = (await handle.describe()).raw.pendingActivities ?? [];
  return { batch, handle, running, after };
}

it('drains in-flight activities on SIGTERM: each finishes on its first attempt', async () => {
  const { handle, running, after } = await stopMidBatch(60_000);
  // None of them is still pending (a cancelled one would be, waiting for its retry)...
  expect(after.filter((a) => running.includes(a.activityId!))).toEqual([]);
  // ...and each completed: the history has its completion, and no activity failed or timed out.
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => [e.activityTaskScheduledEventAttributes!.activityId!, Number(e.eventId)]));
  const completed = new Set(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED).map((e) => Number(e.activityTaskCompletedEventAttributes!.scheduledEventId)));
  for (const id of running) expect(completed.has(scheduled.get(id)!)).toBe(true);
  expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED || e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)).toEqual([]);
}, 240_000);

it('without a grace time the same stop cancels them (so the case above proves the drain)', async () => {
  const { running, after } = await stopMidBatch(0);
  const retried = after.filter((a) => running.includes(a.activityId!) && (a.attempt ?? 1) > 1);
  expect(retried.length).toBeGreaterThan(0);
  expect(retried.every((a) => a.lastFailure)).toBe(true);
}, 240_000);

it('every batch stopped above still finishes on a new worker, each device once', async () => {
  const worker = spawnWorker(s.taskQueue, dataDir);
  try {
    const batches = (await s.db('batches').where('name', 'like', 'drain %').pluck('id')) as string[];
    expect(batches).toHaveLength(2);
    for (const id of batches) {
      const b = await eventually(async () => {
        const v = (await (await s.api(`/api/v1/batches/${id}`)).json()) as Batch;
        return v.provisioning.status === 'ready' ? v : null;
      }, 180_000, 250);
      expect(b.provisioning).toMatchObject({ devicesCreated: 1500, workflowsStarted: 1500 });
      const n = await eventually(async () => {
        const c = (await s.temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${id}" AND ExecutionStatus = "Running"`)).count;
        return c === 1500 ? c : null;
      }, 60_000, 250);
      expect(n).toBe(1500);
    }
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
  }
}, 400_000);
