// Pairing end to end against the real stack: the pairing workflow on the real Temporal dev server,
// the device lifecycle workflows, Postgres, the run's Mosquitto, a bridge routing the devices'
// answers, and reference-firmware devices provisioned from their batch's devices.csv (the pairing
// code from the label) that confirm by their button (the local admin page, or pressButton()).
import type { Bridge } from '../bridge/bridge';
import { startTestBridge } from './support/bridge';
import { AppError, TooManyRequestsError } from '../domain/errors';
import { qrPayload } from '../domain/qr-payload';
import { Device, type DeviceOptions } from '../firmware/device';
import { startLocalAdmin } from '../firmware/local-admin';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { cancelPairing, readPairing, requestPairing, unpair, type PairingContext } from '../temporal/pairing-workflows';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
let bridge: Bridge;
let ctx: PairingContext;
let creds: Provisioning[];
let next = 0;
const devices: Device[] = [];

async function json<T = any>(res: Response, status: number): Promise<T> {
  const body = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${body}`);
  return (body ? JSON.parse(body) : undefined) as T;
}

/** The next provisioned device, `free`, running the reference firmware and connected. */
async function freeDevice(opts: Partial<DeviceOptions> = {}): Promise<{ d: Device; code: string }> {
  const c = creds[next++]!;
  await json(await s.api(`/api/v1/devices/${c.deviceId}/status`, { method: 'POST', json: { status: 'free' } }), 200);
  const d = new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: testEnv().mqttUrl, model: 'ev-charger', publishIntervalMs: 60_000, backoff: { initialMs: 100, maxMs: 500 }, ...opts });
  devices.push(d);
  const connected = d.waitFor('connected');
  d.start();
  await connected;
  return { d, code: c.pairingCode! };
}

const row = async (id: string) => (await s.db('devices').where({ id }).first('status', 'owner_id')) as { status: string; owner_id: string | null };

async function refusal(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(() => null, (e: unknown) => e);
  if (!(err instanceof AppError)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  s = await startStack();
  ctx = { temporal: s.temporal, db: s.db, taskQueue: s.taskQueue, timeoutS: 120 };
  bridge = await startTestBridge(s, 'pairing');
  const batch = await json(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'pairing', count: 40, model: 'ev-charger' } }), 201);
  await eventually(async () => (await json(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready');
  for (const status of ['manufacturing', 'manufactured']) {
    expect((await json(await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status } }), 200)).changed).toBe(40);
  }
  creds = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text(), { broker: testEnv().mqttUrl });
  expect(creds[0]!.pairingCode).toMatch(/^[0-9A-Z]{10}$/);
}, 120_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  await bridge?.stop();
  await s?.stop();
});

describe('a user pairs a device', () => {
  it('is answered pending at once; the device confirms by its button (admin page); the user owns it and the device is told', async () => {
    const { d, code } = await freeDevice();
    const admin = await startLocalAdmin({ device: d });
    try {
      const asked = d.waitFor('pairing-request');
      const before = Date.now();
      // The QR's whole text, as a pairing app sends it.
      const p = await requestPairing(ctx, { qr: qrPayload(d.deviceId, code), userId: 'U-ALICE' });
      expect(p).toMatchObject({ deviceId: d.deviceId, userId: 'U-ALICE', status: 'pending' });
      expect(Date.parse(p.expiresAt) - before).toBeGreaterThan(115_000);
      expect(Date.parse(p.expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);
      // Answered once checked and recorded; the workflow then moves the device (PATCH_ANSWER_BEFORE_MOVE).
      await eventually(async () => (await row(d.deviceId)).status === 'pairing');
      expect(await row(d.deviceId)).toEqual({ status: 'pairing', owner_id: null });
      expect(await readPairing(s.db, p.id)).toMatchObject({ status: 'pending', deviceId: d.deviceId, userId: 'U-ALICE' });
      expect(await asked).toEqual({ pairingId: p.id, expiresAt: p.expiresAt });

      // Asking again (a double tap) meets the same attempt.
      expect(await requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-ALICE' })).toEqual(p);

      const page = await (await fetch(admin.url)).text();
      expect(page).toContain('id="pair-button"');
      const owned = d.waitFor('owner', 30_000);
      expect((await fetch(`${admin.url}/api/pairing/accept`, { method: 'POST' })).status).toBe(200);
      expect(await owned).toEqual({ ownerId: 'U-ALICE' });
      await eventually(async () => (await readPairing(s.db, p.id)).status === 'paired');
      expect(await row(d.deviceId)).toEqual({ status: 'paired', owner_id: 'U-ALICE' });
      expect((await readPairing(s.db, p.id)).finishedAt).not.toBeNull();
      const history = await s.db('device_status_events').where({ device_id: d.deviceId }).orderBy('version').select('from_status', 'to_status', 'actor', 'actor_id');
      expect(history.slice(-2)).toEqual([
        { from_status: 'free', to_status: 'pairing', actor: 'system', actor_id: 'U-ALICE' },
        { from_status: 'pairing', to_status: 'paired', actor: 'system', actor_id: 'U-ALICE' },
      ]);
      // The page shows the owner; a second press has nothing to answer.
      expect(await (await fetch(admin.url)).text()).toContain('<b id="owner">U-ALICE</b>');
      expect((await fetch(`${admin.url}/api/pairing/accept`, { method: 'POST' })).status).toBe(409);
      // Paired: nobody else may pair it.
      expect(await refusal(requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-BOB' }))).toMatchObject({ status: 409, code: 'already_paired' });
    } finally {
      await admin.close();
    }
  }, 60_000);

  it('goes back to free when the device refuses, and can then be paired by a new attempt', async () => {
    const { d, code } = await freeDevice();
    const asked = d.waitFor('pairing-request');
    const p = await requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-CAROL' });
    await asked;
    expect(d.refusePairing()).toBe(true);
    await eventually(async () => (await readPairing(s.db, p.id)).status === 'rejected');
    await eventually(async () => (await row(d.deviceId)).status === 'free');
    expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    expect(d.owner).toBeNull();

    d.setPairingMode('accept');
    const again = await eventually(() => requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-CAROL' }).catch((e: AppError) => (e.code === 'pairing_pending' ? null : Promise.reject(e))));
    expect(again.id).not.toBe(p.id);
    await eventually(async () => (await readPairing(s.db, again.id)).status === 'paired');
    expect(await row(d.deviceId)).toEqual({ status: 'paired', owner_id: 'U-CAROL' });
  }, 60_000);

  it('is cancelled by the user who asked (only by them): back to free', async () => {
    const { d, code } = await freeDevice();
    const p = await requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-DAN' });
    expect(await refusal(cancelPairing(ctx, { pairingId: p.id, userId: 'U-EVE' }))).toMatchObject({ status: 403 });
    expect((await cancelPairing(ctx, { pairingId: p.id, userId: 'U-DAN' })).status).toBe('cancelled');
    expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    // A repeat answers the same; the device pressing afterwards changes nothing.
    expect((await cancelPairing(ctx, { pairingId: p.id, userId: 'U-DAN' })).status).toBe('cancelled');
    expect(d.pressButton()).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    expect(await refusal(readPairing(s.db, 'NOSUCHPAIRING000'))).toMatchObject({ status: 404 });
  }, 60_000);

  it('refuses unknown devices, wrong codes, devices not free, blocked devices', async () => {
    expect(await refusal(requestPairing(ctx, { deviceId: 'ABCDEFGHJKMN', code: '0123456789', userId: 'U-FRANK' }))).toMatchObject({ status: 404 });
    const { d, code } = await freeDevice();
    expect(await refusal(requestPairing(ctx, { deviceId: d.deviceId, code: code.replace(/^./, (c) => (c === '0' ? '1' : '0')), userId: 'U-FRANK' }))).toMatchObject({ status: 403, code: 'wrong_pairing_code' });
    expect(await refusal(requestPairing(ctx, { qr: `RDM1:${d.deviceId}`, userId: 'U-FRANK' }))).toMatchObject({ status: 422 });
    // Not free: the next device is still `manufactured`.
    const c = creds[next++]!;
    expect(await refusal(requestPairing(ctx, { deviceId: c.deviceId, code: c.pairingCode!, userId: 'U-FRANK' }))).toMatchObject({ status: 409, code: 'device_not_free' });
    expect(await row(c.deviceId)).toEqual({ status: 'manufactured', owner_id: null });
    // Blocked (its credentials revoked): refused, changes nothing.
    await s.db('devices').where({ id: d.deviceId }).update({ blocked: true });
    try {
      expect(await refusal(requestPairing(ctx, { deviceId: d.deviceId, code: code.toLowerCase(), userId: 'U-FRANK' }))).toMatchObject({ status: 409, code: 'device_blocked' });
      expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    } finally {
      await s.db('devices').where({ id: d.deviceId }).update({ blocked: false });
    }
    expect(await s.db('pairings').where({ device_id: d.deviceId })).toEqual([]);
  }, 60_000);
});

describe('two users pairing one device at once', () => {
  it('exactly one wins, every time; the other is refused 409 and the winner owns the device', async () => {
    for (let round = 0; round < 4; round++) {
      const { d, code } = await freeDevice({ pairing: 'accept' });
      const users = ['U-RED', 'U-BLUE', 'U-GREEN'].map((u) => `${u}-${round}`);
      // Round 0 with the worker away: all three requests then reach the workflow in its first task,
      // where every validator sees no attempt yet (the handlers must take turns).
      if (round === 0) await s.stopWorker();
      const asked = Promise.allSettled(users.map((userId) => requestPairing(ctx, { deviceId: d.deviceId, code, userId })));
      if (round === 0) {
        await new Promise((r) => setTimeout(r, 1_000));
        await s.startWorker();
      }
      const results = await asked;
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost.map((r) => (r.reason as AppError).code)).toEqual(['pairing_pending', 'pairing_pending']);
      const winner = (won[0] as PromiseFulfilledResult<{ userId: string; id: string }>).value;
      await eventually(async () => (await readPairing(s.db, winner.id)).status === 'paired');
      expect(await row(d.deviceId)).toEqual({ status: 'paired', owner_id: winner.userId });
      expect(await s.db('pairings').where({ device_id: d.deviceId }).count<{ count: string }[]>('* as count')).toEqual([{ count: '1' }]);
    }
  }, 120_000);
});

describe('wrong codes are rate limited', () => {
  const wrong = (code: string) => code.split('').reverse().join('');

  it('per device: after 5 wrong codes even the right one is refused 429 (for every user) until the window passes', async () => {
    const { d, code } = await freeDevice({ pairing: 'accept' });
    for (let i = 0; i < 5; i++) {
      expect(await refusal(requestPairing(ctx, { deviceId: d.deviceId, code: wrong(code), userId: `U-GUESS-${i}` }))).toMatchObject({ status: 403 });
    }
    for (const userId of ['U-GUESS-0', 'U-HONEST']) {
      const e = await refusal(requestPairing(ctx, { deviceId: d.deviceId, code, userId }));
      expect(e).toBeInstanceOf(TooManyRequestsError);
      expect(e.status).toBe(429);
      expect((e as TooManyRequestsError).retryAfterS).toBeGreaterThan(800);
      expect((e as TooManyRequestsError).retryAfterS).toBeLessThanOrEqual(900);
    }
    expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    // 15 minutes later (the failures' clock moved back), the right code pairs.
    await s.db('pairing_failures').where({ device_id: d.deviceId }).update({ at: s.db.raw(`at - interval '16 minutes'`) });
    const p = await requestPairing(ctx, { deviceId: d.deviceId, code, userId: 'U-HONEST' });
    await eventually(async () => (await readPairing(s.db, p.id)).status === 'paired');
  }, 60_000);

  it('per user: 5 wrong codes across devices (or unknown ones) and that user is refused 429 for an hour, others are not', async () => {
    const targets = [];
    for (let i = 0; i < 3; i++) targets.push(await freeDevice({ pairing: 'accept' }));
    for (let i = 0; i < 4; i++) {
      const t = targets[i % 2]!;
      await refusal(requestPairing(ctx, { deviceId: t.d.deviceId, code: wrong(t.code), userId: 'U-MALLORY' }));
    }
    expect(await refusal(requestPairing(ctx, { deviceId: 'ABCDEFGHJKMN', code: '0000000000', userId: 'U-MALLORY' }))).toMatchObject({ status: 404 });
    const e = await refusal(requestPairing(ctx, { deviceId: targets[2]!.d.deviceId, code: targets[2]!.code, userId: 'U-MALLORY' }));
    expect(e).toMatchObject({ status: 429 });
    expect((e as TooManyRequestsError).retryAfterS).toBeGreaterThan(3_000);
    expect((e as TooManyRequestsError).retryAfterS).toBeLessThanOrEqual(3_600);
    // Those devices' own windows are not full: their owner-to-be still pairs.
    const p = await requestPairing(ctx, { deviceId: targets[0]!.d.deviceId, code: targets[0]!.code, userId: 'U-TRENT' });
    await eventually(async () => (await readPairing(s.db, p.id)).status === 'paired');
  }, 60_000);

  it('counts a burst of concurrent guesses one by one: no more than 5 are ever judged', async () => {
    const { d, code } = await freeDevice();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => refusal(requestPairing(ctx, { deviceId: d.deviceId, code: wrong(code), userId: `U-BURST-${i}` }))));
    expect(results.filter((e) => e.status === 403)).toHaveLength(5);
    expect(results.filter((e) => e.status === 429)).toHaveLength(15);
    expect(await s.db('pairing_failures').where({ device_id: d.deviceId }).count<{ count: string }[]>('* as count')).toEqual([{ count: '5' }]);
  }, 60_000);
});

describe('unpairing', () => {
  it('by the owner or an admin: the device forgets its owner and is free again', async () => {
    const { d, code } = await freeDevice({ pairing: 'accept' });
    for (const [owner, byAdmin] of [['U-OWEN', false], ['U-OLGA', true]] as const) {
      const told = d.waitFor('owner', 30_000, (o) => o.ownerId === owner);
      const p = await eventually(() => requestPairing(ctx, { deviceId: d.deviceId, code, userId: owner }).catch((e: AppError) => (e.code === 'pairing_pending' ? null : Promise.reject(e))));
      await told;
      await eventually(async () => (await readPairing(s.db, p.id)).status === 'paired');
      expect(await refusal(unpair(ctx, { deviceId: d.deviceId, userId: 'U-STRANGER', asAdmin: false }))).toMatchObject({ status: 403 });
      const forgot = d.waitFor('owner', 30_000, (o) => o.ownerId === null);
      expect(await unpair(ctx, { deviceId: d.deviceId, userId: byAdmin ? 'U-ADMIN' : owner, asAdmin: byAdmin })).toEqual({ deviceId: d.deviceId, status: 'free' });
      await forgot;
      expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
      expect(d.owner).toBeNull();
      const last = await s.db('device_status_events').where({ device_id: d.deviceId }).orderBy('version', 'desc').first('from_status', 'to_status', 'actor', 'actor_id');
      expect(last).toEqual({ from_status: 'paired', to_status: 'free', actor: byAdmin ? 'admin' : 'system', actor_id: byAdmin ? 'U-ADMIN' : owner });
    }
    expect(await refusal(unpair(ctx, { deviceId: d.deviceId, userId: 'U-ADMIN', asAdmin: true }))).toMatchObject({ status: 409, code: 'not_paired' });
    expect(await refusal(unpair(ctx, { deviceId: 'ABCDEFGHJKMN', userId: 'U-ADMIN', asAdmin: true }))).toMatchObject({ status: 404 });
  }, 90_000);
});

describe('over the REST API, by signed-in people', () => {
  /** A code that is not the device's (the right one, its last character changed). */
  const notTheCode = (code: string) => code.slice(0, -1) + (code.endsWith('A') ? 'B' : 'A');
  it('pairs (202 with Location), confirms by the button, shows the attempt to its person only, and unpairs by the owner', async () => {
    const { d, code } = await freeDevice({ pairing: 'accept' });
    const alice = await s.endUser();
    const bob = await s.endUser();
    const told = d.waitFor('owner', 30_000, (o) => o.ownerId === alice.userId);
    const r = await s.api('/api/v1/pairings', { token: alice.token, method: 'POST', json: { deviceId: d.deviceId, code: code.toLowerCase() } });
    const p = await json<{ id: string; status: string; userId: string }>(r, 202);
    expect(p).toMatchObject({ status: 'pending', userId: alice.userId });
    expect(r.headers.get('location')).toBe(`/api/v1/pairings/${p.id}`);
    await told;
    await eventually(async () => (await json<{ status: string }>(await s.api(`/api/v1/pairings/${p.id}`, { token: alice.token }), 200)).status === 'paired');
    expect((await s.api(`/api/v1/pairings/${p.id}`, { token: bob.token })).status).toBe(404); // someone else's attempt: not there
    expect((await s.api(`/api/v1/devices/${d.deviceId}`, { token: alice.token })).status).toBe(200); // hers now
    expect((await s.api(`/api/v1/devices/${d.deviceId}`, { token: bob.token })).status).toBe(404);
    // Bob, with the code, is refused: the device is taken.
    expect((await s.api('/api/v1/pairings', { token: bob.token, method: 'POST', json: { qr: qrPayload(d.deviceId, code) } })).status).toBe(409);
    expect((await s.api(`/api/v1/devices/${d.deviceId}/owner`, { token: bob.token, method: 'DELETE' })).status).toBe(404);
    const forgot = d.waitFor('owner', 30_000, (o) => o.ownerId === null);
    expect(await json(await s.api(`/api/v1/devices/${d.deviceId}/owner`, { token: alice.token, method: 'DELETE' }), 200)).toEqual({ deviceId: d.deviceId, status: 'free' });
    await forgot;
    expect(await row(d.deviceId)).toEqual({ status: 'free', owner_id: null });
    expect((await s.api(`/api/v1/devices/${d.deviceId}`, { token: alice.token })).status).toBe(404);
    const logged = await json<{ items: { action: string; userId: string | null }[] }>(await s.api(`/api/v1/audit?deviceId=${d.deviceId}&limit=100`), 200);
    expect(logged.items.filter((e) => e.action === 'device.paired' || e.action === 'device.unpaired').map((e) => e.action).sort()).toEqual(['device.paired', 'device.unpaired']);
  }, 90_000);

  it('answers a wrong code 403, a bad QR 422, and cancels by DELETE (only its person): the device is free again', async () => {
    const { d, code } = await freeDevice();
    const carol = await s.endUser();
    const dave = await s.endUser();
    expect(((await json<{ error: { code: string } }>(await s.api('/api/v1/pairings', { token: carol.token, method: 'POST', json: { deviceId: d.deviceId, code: notTheCode(code) } }), 403)).error.code)).toBe('wrong_pairing_code');
    expect((await s.api('/api/v1/pairings', { token: carol.token, method: 'POST', json: { qr: 'hello' } })).status).toBe(422);
    expect((await s.api('/api/v1/pairings', { token: carol.token, method: 'POST', json: { deviceId: d.deviceId } })).status).toBe(400);
    const p = await json<{ id: string }>(await s.api('/api/v1/pairings', { token: carol.token, method: 'POST', json: { deviceId: d.deviceId, code } }), 202);
    expect((await s.api(`/api/v1/pairings/${p.id}`, { token: dave.token, method: 'DELETE' })).status).toBe(404);
    expect(await json(await s.api(`/api/v1/pairings/${p.id}`, { token: carol.token, method: 'DELETE' }), 200)).toMatchObject({ id: p.id, status: 'cancelled' });
    expect((await row(d.deviceId)).status).toBe('free');
    expect((await s.api(`/api/v1/pairings/${p.id}`, { token: carol.token, method: 'DELETE' })).status).toBe(200); // a repeat answers the same
    expect((await s.api('/api/v1/pairings', { method: 'POST', json: { deviceId: d.deviceId, code }, token: null })).status).toBe(401);
  }, 90_000);
});
