// A worker killed (SIGKILL) half-way through a 2,000-device batch: after a new worker starts,
// the batch holds exactly 2,000 devices, each with exactly one lifecycle workflow.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Batch } from '../domain/model';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

const root = path.resolve(__dirname, '..');
let s: Stack;
let dataDir: string;

function spawnWorker(taskQueue: string): ChildProcess {
  const env = testEnv();
  // `node --import tsx`, not the tsx CLI: the CLI runs the program in a child, which a SIGKILL of the CLI would orphan.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      TEMPORAL_ADDRESS: env.temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
      MQTT_URL: env.mqttUrl,
      DEVICE_SECRET_KEY: env.deviceSecretKey,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => process.env.TEST_LOG_LEVEL && process.stderr.write(d));
  return child;
}

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

  let worker = spawnWorker(s.taskQueue);
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

  worker = spawnWorker(s.taskQueue);
  try {
    const done = await eventually(async () => {
      const b = (await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch;
      return b.provisioning.status === 'ready' ? b : null;
    }, 120_000, 250);
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
}, 240_000);
