// A worker killed (SIGKILL) in the middle of pairings: once a new worker runs, each attempt
// finishes as if nothing happened, with each status change recorded once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Bridge } from '../bridge/bridge';
import { startTestBridge } from './support/bridge';
import { Device } from '../firmware/device';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { readPairing, requestPairing, type PairingContext } from '../temporal/pairing-workflows';
import { testEnv } from './support/env';
import { registerDevices } from './support/broker';
import { eventually, startStack, type Stack } from './support/stack';
import { exited, spawnWorker } from './support/worker-process';

let s: Stack;
let bridge: Bridge;
let ctx: PairingContext;
let creds: Provisioning[];
let dataDir: string;
let worker: ChildProcess | null = null;
const devices: Device[] = [];

async function kill(): Promise<void> {
  const w = worker!;
  worker = null;
  w.kill('SIGKILL');
  await exited(w);
}

const status = async (id: string) => ((await s.db('devices').where({ id }).first('status')) as { status: string }).status;
const changes = (id: string) => s.db('device_status_events').where({ device_id: id }).orderBy('version').select('from_status', 'to_status');

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-pairing-crash-'));
  s = await startStack({ worker: false });
  ctx = { temporal: s.temporal, db: s.db, taskQueue: s.taskQueue, timeoutS: 120 };
  bridge = await startTestBridge(s, 'pairing-crash');
  worker = spawnWorker(s.taskQueue, dataDir);
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'pairing crash', count: 2 } });
  const batch = (await r.json()) as { id: string };
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as { provisioning: { status: string } }).provisioning.status === 'ready', 60_000);
  for (const to of ['manufacturing', 'manufactured', 'free']) await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: to } });
  creds = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text(), { broker: testEnv().mqttUrl });
  // The worker here is a process of its own, configured for an external broker (no logins to
  // mirror): the devices' logins go to the run's broker as the embedded product's worker puts them.
  await registerDevices(creds);
}, 120_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  if (worker) {
    worker.kill('SIGTERM');
    await exited(worker);
  }
  await bridge?.stop();
  await s?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

it('finishes a pairing whose worker was killed while accepting it, and one killed while it waited for the device', async () => {
  const [a, b] = creds.map((c) => {
    const d = new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: testEnv().mqttUrl, model: 'ev-charger', publishIntervalMs: 60_000 });
    devices.push(d);
    d.start();
    return { d, code: c.pairingCode! };
  }) as [{ d: Device; code: string }, { d: Device; code: string }];
  await Promise.all([a.d.waitConnected(), b.d.waitConnected()]);

  // 1. Killed as soon as the device went `pairing` (the workflow moves it right after answering).
  const askedA = a.d.waitFor('pairing-request', 60_000);
  const requestA = requestPairing(ctx, { deviceId: a.d.deviceId, code: a.code, userId: 'U-CRASH-A' });
  await eventually(async () => (await status(a.d.deviceId)) === 'pairing', 30_000, 5);
  await kill();
  worker = spawnWorker(s.taskQueue, dataDir);
  const pa = await requestA; // the caller still gets its answer
  expect(pa.status).toBe('pending');
  expect((await askedA).pairingId).toBe(pa.id);

  // 2. Killed while waiting for the device; the device confirms while no worker runs.
  const askedB = b.d.waitFor('pairing-request', 60_000);
  const pb = await requestPairing(ctx, { deviceId: b.d.deviceId, code: b.code, userId: 'U-CRASH-B' });
  await askedB; // the workflow moved the device and asked it (after answering): now it waits
  await kill();
  const ownedA = a.d.waitFor('owner', 60_000);
  const ownedB = b.d.waitFor('owner', 60_000);
  await eventually(async () => a.d.pressButton(), 30_000);
  await eventually(async () => b.d.pressButton(), 30_000);
  await new Promise((r) => setTimeout(r, 500));
  expect(await readPairing(s.db, pb.id)).toMatchObject({ status: 'pending' }); // nobody ran it yet
  worker = spawnWorker(s.taskQueue, dataDir);

  expect(await ownedA).toEqual({ ownerId: 'U-CRASH-A' });
  expect(await ownedB).toEqual({ ownerId: 'U-CRASH-B' });
  for (const [p, d, user] of [[pa, a.d, 'U-CRASH-A'], [pb, b.d, 'U-CRASH-B']] as const) {
    await eventually(async () => (await readPairing(s.db, p.id)).status === 'paired', 60_000);
    expect(await s.db('devices').where({ id: d.deviceId }).first('status', 'owner_id')).toEqual({ status: 'paired', owner_id: user });
    expect((await changes(d.deviceId)).slice(-2)).toEqual([
      { from_status: 'free', to_status: 'pairing' },
      { from_status: 'pairing', to_status: 'paired' },
    ]);
    expect(await s.db('pairings').where({ device_id: d.deviceId }).count<{ count: string }[]>('* as count')).toEqual([{ count: '1' }]);
  }
}, 180_000);
