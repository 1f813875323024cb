// The pairing workflow's clock, on the time-skipping test server (design/environment.md): the
// deadline of PAIRING_TIMEOUT_S (120 s) passes in moments. The activities are the real ones (the
// suite's Postgres, the run's Mosquitto); the device lifecycle workflows they move run on the
// suite's dev server (the test server cannot register the product's search attributes), which is
// simply the Temporal client the activities are given.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { CredentialDeriver } from '../domain/credentials';
import { deviceAnswerSignal, pairingWorkflowId, type PairingView } from '../domain/messages';
import type { Db } from '../db/knex';
import { cancelPairing, readPairing, requestPairing, type PairingContext } from '../temporal/pairing-workflows';
import { startTimeSkipping, type TimeSkipping } from './support/time-skipping';
import { eventually, startStack, type Stack } from './support/stack';

const TIMEOUT_S = 120;

let clock: TimeSkipping;
let env: TestWorkflowEnvironment;
let db: Db;
let ctx: PairingContext;
let credentials: CredentialDeriver;
let s: Stack;
let ids: string[];
let next = 0;

/** A `free` device, provisioned through the API on the dev server. */
async function freeDevice(): Promise<{ id: string; code: string }> {
  const id = ids[next++]!;
  for (const status of ['manufacturing', 'manufactured', 'free']) {
    const r = await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status } });
    if (r.status !== 200) throw new Error(`status ${status}: ${r.status} ${await r.text()}`);
  }
  return { id, code: credentials.device(id).pairingCode };
}

const result = (deviceId: string) => env.client.workflow.getHandle(pairingWorkflowId(deviceId)).result() as Promise<PairingView>;
const row = async (id: string) => (await db('devices').where({ id }).first('status', 'owner_id')) as { status: string; owner_id: string | null };

beforeAll(async () => {
  s = await startStack();
  db = s.db;
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'pairing clock', count: 6 } });
  const batchId = ((await r.json()) as { id: string }).id;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batchId}`)).json()) as { provisioning: { status: string } }).provisioning.status === 'ready');
  ids = (await db('devices').where({ batch_id: batchId }).orderBy('seq').pluck('id')) as string[];
  clock = await startTimeSkipping(s, 'pairing-clock');
  env = clock.env;
  credentials = s.credentials;
  ctx = { temporal: env.client, db, taskQueue: clock.taskQueue, timeoutS: TIMEOUT_S };
}, 120_000);

afterAll(async () => {
  await clock?.stop();
  await s?.stop();
});

it('expires when the device does not answer within PAIRING_TIMEOUT_S: the device is free again', async () => {
  const { id, code } = await freeDevice();
  const p = await requestPairing(ctx, { deviceId: id, code, userId: 'U-SLOW' });
  expect(p.status).toBe('pending');
  // The workflow moves the device after answering (PATCH_ANSWER_BEFORE_MOVE): before the deadline.
  for (let i = 0; i < 100 && (await row(id)).status !== 'pairing'; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await row(id)).toEqual({ status: 'pairing', owner_id: null });
  const started = await env.currentTimeMs();
  const ended = await result(id); // the server skips the 2 minutes
  expect(ended).toMatchObject({ id: p.id, status: 'expired' });
  expect((await env.currentTimeMs()) - started).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 1000);
  expect(await readPairing(db, p.id)).toMatchObject({ status: 'expired' });
  expect(await row(id)).toEqual({ status: 'free', owner_id: null });
}, 60_000);

it('takes a confirmation that comes just before the deadline, and ignores one for another attempt', async () => {
  const { id, code } = await freeDevice();
  const p = await requestPairing(ctx, { deviceId: id, code, userId: 'U-LATE' });
  const h = env.client.workflow.getHandle(pairingWorkflowId(id));
  await env.sleep((TIMEOUT_S - 5) * 1000);
  await h.signal(deviceAnswerSignal, { pairingId: 'SOMEOTHERATTEMPT', accept: true });
  await h.signal(deviceAnswerSignal, { pairingId: p.id, accept: true });
  expect(await result(id)).toMatchObject({ status: 'paired', userId: 'U-LATE' });
  expect(await row(id)).toEqual({ status: 'paired', owner_id: 'U-LATE' });
}, 60_000);

it('is rejected when the device refuses, and cancelled by its user, each back to free before the deadline', async () => {
  const refused = await freeDevice();
  const p1 = await requestPairing(ctx, { deviceId: refused.id, code: refused.code, userId: 'U-NO' });
  await env.client.workflow.getHandle(pairingWorkflowId(refused.id)).signal(deviceAnswerSignal, { pairingId: p1.id, accept: false });
  expect(await result(refused.id)).toMatchObject({ status: 'rejected' });
  expect(await row(refused.id)).toEqual({ status: 'free', owner_id: null });

  const cancelled = await freeDevice();
  const p2 = await requestPairing(ctx, { deviceId: cancelled.id, code: cancelled.code, userId: 'U-OOPS' });
  await env.sleep(30_000);
  expect(await cancelPairing(ctx, { pairingId: p2.id, userId: 'U-OOPS' })).toMatchObject({ status: 'cancelled' });
  expect(await result(cancelled.id)).toMatchObject({ status: 'cancelled' });
  expect(await row(cancelled.id)).toEqual({ status: 'free', owner_id: null });
  // After the deadline the attempt is still cancelled, not expired.
  await env.sleep(TIMEOUT_S * 1000);
  expect(await readPairing(db, p2.id)).toMatchObject({ status: 'cancelled' });
}, 60_000);

it('does not give a device blocked while it was asked to an owner, even when its answer arrives', async () => {
  const { id, code } = await freeDevice();
  const p = await requestPairing(ctx, { deviceId: id, code, userId: 'U-BLOCKED' });
  // What POST /devices/{id}/block records (the broker side is not what this is about).
  await db('devices').where({ id }).update({ blocked: true });
  try {
    await env.client.workflow.getHandle(pairingWorkflowId(id)).signal(deviceAnswerSignal, { pairingId: p.id, accept: true });
    expect(await result(id)).toMatchObject({ id: p.id, status: 'cancelled' });
    expect(await row(id)).toEqual({ status: 'free', owner_id: null });
    expect(await readPairing(db, p.id)).toMatchObject({ status: 'cancelled' });
  } finally {
    await db('devices').where({ id }).update({ blocked: false });
  }
}, 60_000);
