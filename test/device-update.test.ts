// One device's firmware update, end to end (issue 11): a release uploaded through the API, the
// update started through the API and run by the device's lifecycle workflow, reference-firmware
// devices on the run's Mosquitto downloading from the API, verifying, installing, rebooting and
// reporting, the bridge routing their reports. Success, a failed health check rolled back, a
// tampered image refused, an offline device that catches up, cancel, one update at a time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bridge } from '../bridge/bridge';
import { buildTestImage } from '../domain/ota';
import { Device } from '../firmware/device';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { startTestBridge } from './support/bridge';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
let bridge: Bridge;
let rows: Provisioning[];
let stateDir: string;
const devices: Device[] = [];

async function json<T = any>(res: Response, want: number): Promise<T> {
  const body = await res.text();
  if (res.status !== want) throw new Error(`${res.url}: ${res.status} ${body}`);
  return (body ? JSON.parse(body) : null) as T;
}

async function release(version: string, image: Buffer): Promise<{ id: string; signature: string }> {
  const f = new FormData();
  f.append('version', version);
  f.append('model', 'thermostat');
  f.append('companyId', s.companyId);
  f.append('file', new Blob([image]), 'image.bin');
  return json(await s.api('/api/v1/firmware', { method: 'POST', body: f }), 201);
}

function start(row: Provisioning, o: { failHealthCheck?: boolean } = {}): Device {
  const d = new Device({
    deviceId: row.deviceId,
    mqttUsername: row.mqttUsername,
    secret: row.secret,
    mqttUrl: row.mqttUrl,
    model: 'thermostat',
    publishIntervalMs: 60_000,
    backoff: { initialMs: 100, maxMs: 300 },
    stateDir,
    otaPublicKey: s.firmwarePublicKey,
    otaFailHealthCheck: o.failHealthCheck,
    rebootDelayMs: 200,
  });
  devices.push(d);
  d.start();
  return d;
}

async function finished(deviceId: string, updateId: string): Promise<any> {
  return eventually(async () => {
    const u = await json(await s.api(`/api/v1/devices/${deviceId}/updates/${updateId}`), 200);
    return u.finishedAt ? u : null;
  }, 90_000, 200);
}
const startUpdate = (deviceId: string, firmwareId: string, extra: object = {}) => s.api(`/api/v1/devices/${deviceId}/update`, { method: 'POST', json: { firmwareId, ...extra } });

beforeAll(async () => {
  s = await startStack();
  bridge = await startTestBridge(s, 'device-update');
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-update-devices-'));
  const batch = await json<{ id: string }>(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'updates', count: 6, model: 'thermostat' } }), 201);
  await eventually(async () => (await json(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready');
  for (const to of ['manufacturing', 'manufactured']) await json(await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: to } }), 200);
  rows = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text(), { broker: testEnv().mqttUrl });
}, 180_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  await bridge?.stop();
  await s?.stop();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

it('updates a device: it downloads from the API, verifies, installs, reboots and runs the new version', async () => {
  const d = start(rows[0]!);
  await d.waitConnected();
  await eventually(async () => (await json(await s.api(`/api/v1/devices/${rows[0]!.deviceId}`), 200)).firmwareVersion === '1.0.0');
  const r = await release('1.1.0', buildTestImage({ version: '1.1.0', size: 200_000 }));
  const res = await startUpdate(rows[0]!.deviceId, r.id);
  const u = await json(res, 202);
  expect(u).toMatchObject({ version: '1.1.0', releaseId: r.id });
  expect(['queued', 'in-progress']).toContain(u.status); // the workflow may have begun by the time the API reads it back
  expect(res.headers.get('location')).toBe(`/api/v1/devices/${rows[0]!.deviceId}/updates/${u.id}`);
  const done = await finished(rows[0]!.deviceId, u.id);
  expect(done).toMatchObject({ status: 'succeeded', step: 'updated', fromVersion: '1.0.0', error: null });
  expect((await json(await s.api(`/api/v1/devices/${rows[0]!.deviceId}`), 200)).firmwareVersion).toBe('1.1.0');
  expect(d.firmwareVersion).toBe('1.1.0');
  // Again: the device already runs it.
  const again = await json(await startUpdate(rows[0]!.deviceId, r.id), 202);
  expect(await finished(rows[0]!.deviceId, again.id)).toMatchObject({ status: 'already-installed' });
  const list = await json(await s.api(`/api/v1/devices/${rows[0]!.deviceId}/updates`), 200);
  expect(list.items.map((x: any) => x.id)).toEqual([again.id, u.id]);
});

it('reports a failed health check as failed; the device rolled back and still runs the old version', async () => {
  const d = start(rows[1]!, { failHealthCheck: true });
  await d.waitConnected();
  const r = await release('1.2.0-bad', buildTestImage({ version: '1.2.0-bad', size: 50_000, healthCheck: 'fail' }));
  const u = await json(await startUpdate(rows[1]!.deviceId, r.id), 202);
  expect(await finished(rows[1]!.deviceId, u.id)).toMatchObject({ status: 'failed', error: 'health-check-failed' });
  expect(d.firmwareVersion).toBe('1.0.0');
});

it('refuses a tampered image: the device checks the signature, not only the hash', async () => {
  const d = start(rows[2]!);
  await d.waitConnected();
  const r = await release('1.3.0', buildTestImage({ version: '1.3.0', size: 10_000 }));
  // Someone with the database swaps the image's signature for another release's: the device refuses it.
  const other = await release('1.3.1', buildTestImage({ version: '1.3.1', size: 10_000 }));
  await s.db('firmware_releases').where({ id: r.id }).update({ signature: other.signature });
  const u = await json(await startUpdate(rows[2]!.deviceId, r.id), 202);
  expect(await finished(rows[2]!.deviceId, u.id)).toMatchObject({ status: 'failed', error: 'signature-invalid' });
  expect(d.firmwareVersion).toBe('1.0.0');
});

it('waits for an offline device, which gets the update when it connects; one update at a time', async () => {
  const r = await release('1.4.0', buildTestImage({ version: '1.4.0', size: 20_000 }));
  const u = await json(await startUpdate(rows[3]!.deviceId, r.id), 202);
  expect((await json(await startUpdate(rows[3]!.deviceId, r.id), 409)).error.code).toBe('update_in_progress');
  await new Promise((res) => setTimeout(res, 1_000));
  expect(await json(await s.api(`/api/v1/devices/${rows[3]!.deviceId}/updates/${u.id}`), 200)).toMatchObject({ status: 'in-progress', step: null });
  start(rows[3]!);
  expect(await finished(rows[3]!.deviceId, u.id)).toMatchObject({ status: 'succeeded' });
});

it('cancels an update the device has not started: the retained request is gone, so it never starts', async () => {
  const r = await release('1.5.0', buildTestImage({ version: '1.5.0', size: 20_000 }));
  const u = await json(await startUpdate(rows[4]!.deviceId, r.id), 202);
  await eventually(async () => (await json(await s.api(`/api/v1/devices/${rows[4]!.deviceId}/updates/${u.id}`), 200)).status === 'in-progress');
  const cancelled = await json(await s.api(`/api/v1/devices/${rows[4]!.deviceId}/updates/${u.id}`, { method: 'DELETE' }), 200);
  expect(cancelled).toMatchObject({ status: 'cancelled' });
  const d = start(rows[4]!);
  await d.waitConnected();
  await new Promise((res) => setTimeout(res, 1_500));
  expect(d.firmwareVersion).toBe('1.0.0');
  // Cancelling again answers it as it ended.
  expect(await json(await s.api(`/api/v1/devices/${rows[4]!.deviceId}/updates/${u.id}`, { method: 'DELETE' }), 200)).toMatchObject({ status: 'cancelled' });
});

it('times out a device that never answers, within the deadline given', async () => {
  const r = await release('1.6.0', buildTestImage({ version: '1.6.0', size: 20_000 }));
  const u = await json(await startUpdate(rows[5]!.deviceId, r.id, { timeouts: { start: 2 } }), 202);
  expect(await finished(rows[5]!.deviceId, u.id)).toMatchObject({ status: 'failed', error: 'timeout', step: null });
  expect((await startUpdate(rows[5]!.deviceId, 'AAAAAAAAAAAAAAAA')).status).toBe(404);
});

