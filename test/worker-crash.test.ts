// A worker killed (SIGKILL) half-way through a 2,000-device batch: after a new worker starts,
// the batch holds exactly 2,000 devices, each with exactly one lifecycle workflow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Batch } from '../domain/model';
import { eventually, startStack, type Stack } from './support/stack';
import { spawnWorker } from './support/worker-process';

let s: Stack;
let dataDir: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-crash-'));
  s = await startStack({ worker: false, acceptWaitMs: 60_000 });
});
afterAll(async () => {
  await s.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

it('survives a worker crash half-way through a 2,000-device batch without creating anything twice', async () => {
  const lifecycles = async (batchId: string) => (await s.temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${batchId}"`)).count;

  let worker = spawnWorker(s.taskQueue, dataDir);
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'crash test', count: 2000 } });
  expect(r.status).toBe(201);
  const batch = (await r.json()) as Batch;

  // Kill it while lifecycle workflows are being started: some exist, not all.
  const before = await eventually(async () => {
    const n = await lifecycles(batch.id);
    return n >= 200 ? n : null;
  }, 60_000, 20);
  worker.kill('SIGKILL');
  await new Promise((res) => worker.once('exit', res));
  const atKill = await lifecycles(batch.id);
  expect(before).toBeLessThan(2000);
  expect(atKill).toBeLessThan(2000);
  const progress = ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning;
  expect(progress.status).toBe('provisioning');

  worker = spawnWorker(s.taskQueue, dataDir);
  try {
    const done = await eventually(async () => {
      const b = (await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch;
      return b.provisioning.status === 'ready' ? b : null;
    }, 240_000, 250);
    expect(done.provisioning).toMatchObject({ devicesCreated: 2000, workflowsStarted: 2000 });

    const devices = await s.db('devices').where({ batch_id: batch.id }).select('id', 'seq');
    expect(devices).toHaveLength(2000);
    expect(new Set(devices.map((d) => d.id)).size).toBe(2000);
    expect(new Set(devices.map((d) => d.seq))).toEqual(new Set(Array.from({ length: 2000 }, (_, i) => i)));

    await eventually(async () => (await lifecycles(batch.id)) === 2000, 30_000);
    const running = await s.temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${batch.id}" AND ExecutionStatus = "Running"`);
    expect(running.count).toBe(2000);
    // every device has its workflow: sample a few by ID
    for (const d of devices.slice(0, 20)) {
      await expect(s.temporal.workflow.getHandle(`device-${d.id}`).describe()).resolves.toMatchObject({ status: { name: 'RUNNING' } });
    }
  } finally {
    worker.kill('SIGTERM');
    await new Promise((res) => worker.once('exit', res));
  }
}, 400_000);
