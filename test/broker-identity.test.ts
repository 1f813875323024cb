// The broker knows the devices (design/contract.md "MQTT: broker identity"), against the run's
// Mosquitto in the product's own configuration: a device logs in with its CSV's mqtt_username and
// secret and reaches its own subtree only; block, unblock and secret rotation through the API;
// the first connection of a manufactured device makes it free.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { deviceWorkflowId, lifecycleStateQuery } from '../domain/messages';
import { deviceMqttUsername } from '../domain/broker-identity';
import { topics } from '../domain/topics';
import { createLogger } from '../runtime/logger';
import { startBridge, type Bridge } from '../bridge/bridge';
import { temporalSignaller } from '../bridge/workflow-events';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { Device } from '../firmware/device';
import { testCredentialStore } from './support/broker';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
let bridge: Bridge;
let rows: Provisioning[];
const open: MqttClient[] = [];
const devices: Device[] = [];
const { brokerUrl } = testEnv();

/** Logs in; the CONNACK's verdict (and the client when accepted). */
function login(username: string | undefined, password: string | undefined, opts: IClientOptions = {}): Promise<{ ok: boolean; client: MqttClient; error?: string }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(brokerUrl, { username, password, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 5, ...opts });
    open.push(client);
    client.once('connect', () => resolve({ ok: true, client }));
    client.once('error', (err) => resolve({ ok: false, client, error: err.message }));
  });
}

async function deviceLogin(row: Provisioning, password = row.secret) {
  const r = await login(row.mqttUsername, password);
  if (!r.ok) throw new Error(`device ${row.deviceId} refused: ${r.error}`);
  return r.client;
}

async function api<T = any>(path: string, init: Parameters<Stack['api']>[1] = {}, want = 200): Promise<T> {
  const res = await s.api(path, init);
  const body = await res.json().catch(() => null);
  if (res.status !== want) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body as T;
}

const status = (id: string, to: string) => api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status: to } });

function startDevice(row: Provisioning, secret = row.secret): Device {
  const d = new Device({ deviceId: row.deviceId, mqttUsername: row.mqttUsername, secret, mqttUrl: row.mqttUrl, model: 'thermostat', publishIntervalMs: 60_000, backoff: { initialMs: 100, maxMs: 200 } });
  devices.push(d);
  d.start();
  return d;
}

beforeAll(async () => {
  s = await startStack();
  bridge = await startBridge({
    databaseUrl: testEnv().databaseUrl,
    mqttUrl: brokerUrl,
    mqttUsername: 'rdm-bridge',
    mqttPassword: s.credentials.platformPassword('rdm-bridge'),
    group: s.credentials.shareGroup(`identity-${process.pid}`),
    clientId: `identity-bridge-${process.pid}`,
    flushMs: 10,
    signaller: temporalSignaller(s.temporal),
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'bridge'),
  });
  const batch = await api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'identity', count: 8, model: 'thermostat' } }, 201);
  await eventually(async () => (await api(`/api/v1/batches/${batch.id}`)).provisioning.status === 'ready', 60_000);
  // The batch's logins reach the broker beside the workflow starts: the CSV does not wait for them.
  await eventually(async () => Number((await s.db('devices').where({ batch_id: batch.id }).whereNull('broker_generation').count({ n: '*' }))[0]!.n) === 0, 60_000);
  rows = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text());
  expect(rows).toHaveLength(8);
});

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  for (const c of open) c.end(true);
  await bridge?.stop();
  await s?.stop();
});

it("logs a device in with its CSV's mqtt_username and secret; refuses a wrong secret, an unknown device, the ID's other case, anonymity", async () => {
  const [a] = rows;
  expect(a!.mqttUsername).toBe(a!.deviceId.toLowerCase());
  expect(a!.mqttUrl).toBe(brokerUrl);
  expect((await login(a!.mqttUsername, a!.secret)).ok).toBe(true);
  // Any client ID works (libraries that choose their own).
  expect((await login(a!.mqttUsername, a!.secret, { clientId: 'whatever-the-library-picks' })).ok).toBe(true);
  for (const [u, p] of [
    [a!.mqttUsername, `${a!.secret.slice(0, -1)}X`],
    [a!.mqttUsername, rows[1]!.secret],
    [a!.deviceId, a!.secret],
    ['zzzzzzzzzzzz', a!.secret],
    [undefined, undefined],
    ['rdm-api', 'not-its-password'],
  ] as const) {
    const r = await login(u, p);
    expect({ u, ok: r.ok }).toEqual({ u, ok: false });
    expect(r.error).toMatch(/Not authorized|Bad User Name or Password/);
  }
});

it("keeps a device inside its own subtree: it neither writes nor reads another device's topics, nor $SYS, nor the bridges' share", async () => {
  const [a, b] = [rows[2]!, rows[3]!];
  const ca = await deviceLogin(a);
  const cb = await deviceLogin(b);
  const seenByA: string[] = [];
  ca.on('message', (t) => seenByA.push(t));
  // Mosquitto acknowledges these subscriptions (its acl_file is checked per delivery) and delivers
  // nothing outside A's subtree. A device that knows the bridges' configured group name tries to join it: it cannot, as the
  // group's real name carries a key-derived suffix (a member the ACL then denies would lose messages).
  const base = `identity-${process.pid}`;
  await ca.subscribeAsync(['#', 'homie/+/#', topics.deviceAll(b.deviceId), '$SYS/#', `$share/${base}/homie/+/#`, `$share/${base}/homie/#`, '$share/rdm-bridge/homie/+/#', topics.deviceAll(a.deviceId)], { qos: 1 });

  // The platform's side: a member of the bridges' share group (as the bridge logs in).
  const watcher = await login('rdm-bridge', s.credentials.platformPassword('rdm-bridge'));
  const seenByPlatform: string[] = [];
  watcher.client.on('message', (t) => seenByPlatform.push(t));
  await watcher.client.subscribeAsync(`$share/${s.credentials.shareGroup(base)}/homie/${b.mqttUsername}/#`, { qos: 1 });

  // A writing into B's tree is refused; A's own tree works; B's traffic never reaches A.
  const intoB = await ca.publishAsync(topics.property(b.deviceId, 'env', 'temperature'), '99', { qos: 1 }).then(
    () => 'accepted',
    (e: Error) => e.message,
  );
  expect(intoB).toMatch(/Not authorized/); // MQTT 5: the PUBACK says so
  await ca.publishAsync(topics.property(a.deviceId, 'env', 'temperature'), '21', { qos: 1 });
  for (let i = 0; i < 20; i++) await cb.publishAsync(topics.property(b.deviceId, 'env', 'temperature'), String(i), { qos: 1 });
  await eventually(async () => seenByPlatform.filter((t) => t === topics.property(b.deviceId, 'env', 'temperature')).length >= 20, 5_000, 20);
  await eventually(async () => seenByA.includes(topics.property(a.deviceId, 'env', 'temperature')), 5_000, 20);
  await new Promise((r) => setTimeout(r, 300));
  // The bridges' group had every one of B's messages (none went to A), and not A's write into B's tree.
  expect(seenByPlatform).toHaveLength(20);
  expect(seenByA.length).toBeGreaterThan(0);
  expect(seenByA.filter((t) => !t.startsWith(`homie/${a.mqttUsername}/`))).toEqual([]);
});

it('blocks a connected device: cut off within a second, refused until unblocked; the flag shows on the device and in its workflow', async () => {
  const row = rows[4]!;
  const d = startDevice(row);
  await d.waitConnected(10_000);
  let cutAt = 0;
  d.on('disconnected', () => (cutAt ||= Date.now()));

  const sentAt = Date.now();
  const r = await api(`/api/v1/devices/${row.deviceId}/block`, { method: 'POST' });
  expect(r).toMatchObject({ device: { id: row.deviceId, blocked: true }, changed: true });
  await eventually(async () => cutAt > 0, 1_000, 10);
  expect(cutAt - sentAt).toBeLessThan(1_000);
  expect((await login(row.mqttUsername, row.secret)).ok).toBe(false);
  expect(await api(`/api/v1/devices/${row.deviceId}`)).toMatchObject({ blocked: true });
  expect((await s.temporal.workflow.getHandle(deviceWorkflowId(row.deviceId)).query(lifecycleStateQuery)).blocked).toBe(true);
  // Again: nothing changes.
  expect(await api(`/api/v1/devices/${row.deviceId}/block`, { method: 'POST' })).toMatchObject({ changed: false });
  // The device keeps trying and stays out.
  await new Promise((res) => setTimeout(res, 500));
  expect(d.isOnline).toBe(false);

  // A manufacturer may not block.
  const manufacturer = await s.token('manufacturer');
  expect((await s.api(`/api/v1/devices/${row.deviceId}/unblock`, { method: 'POST', token: manufacturer })).status).toBe(403);

  expect(await api(`/api/v1/devices/${row.deviceId}/unblock`, { method: 'POST' })).toMatchObject({ device: { blocked: false }, changed: true });
  await d.waitConnected(10_000);
  expect((await s.temporal.workflow.getHandle(deviceWorkflowId(row.deviceId)).query(lifecycleStateQuery)).blocked).toBe(false);
});

it('rotates a secret: the new one is answered once and logs in, the old one no longer does', async () => {
  const row = rows[5]!;
  const before = await s.db('devices').where({ id: row.deviceId }).first('secret_generation', 'secret_hash');
  const connected = await deviceLogin(row);
  const r = await api(`/api/v1/devices/${row.deviceId}/secret`, { method: 'POST' });
  // A connection made with the old secret is cut off too (the reload checks connected clients).
  await eventually(async () => !connected.connected, 2_000, 10);
  expect(r).toEqual({ deviceId: row.deviceId, mqttUsername: deviceMqttUsername(row.deviceId), secret: expect.any(String), generation: before.secret_generation + 1 });
  expect(r.secret).not.toBe(row.secret);
  const after = await s.db('devices').where({ id: row.deviceId }).first('secret_generation', 'secret_hash', 'broker_generation');
  expect(after).toMatchObject({ secret_generation: before.secret_generation + 1, broker_generation: before.secret_generation + 1 });
  expect(after.secret_hash).not.toBe(before.secret_hash);
  expect((await login(row.mqttUsername, row.secret)).ok).toBe(false);
  expect((await login(row.mqttUsername, r.secret)).ok).toBe(true);
  // The label's pairing code does not change with the secret.
  const csv = provisioningRows(await (await s.api(`/api/v1/batches/${(await api(`/api/v1/devices/${row.deviceId}`)).batchId}/devices.csv`)).text());
  expect(csv.find((c) => c.deviceId === row.deviceId)).toMatchObject({ secret: r.secret, pairingCode: row.pairingCode });
});

it('makes a manufactured device free on its first authenticated connection (the lifecycle decides, actor system); a new one stays new', async () => {
  const [m, n] = [rows[6]!, rows[7]!];
  await status(m.deviceId, 'manufacturing');
  await status(m.deviceId, 'manufactured');
  startDevice(m);
  startDevice(n);
  await eventually(async () => (await api(`/api/v1/devices/${m.deviceId}`)).status === 'free', 15_000);
  const last = await s.db('device_status_events').where({ device_id: m.deviceId }).orderBy('version', 'desc').first('from_status', 'to_status', 'actor', 'reason');
  expect(last).toEqual({ from_status: 'manufactured', to_status: 'free', actor: 'system', reason: 'first authenticated connection' });
  await eventually(async () => (await api(`/api/v1/devices/${n.deviceId}`)).online, 10_000);
  expect((await api(`/api/v1/devices/${n.deviceId}`)).status).toBe('new');
});

it("does not let a device be manufactured before the broker has its login: the lifecycle puts it there first", async () => {
  const row = rows[0]!;
  // As if the batch's sync had not reached this device yet.
  await testCredentialStore().remove([row.mqttUsername]);
  await s.db('devices').where({ id: row.deviceId }).update({ broker_generation: null });
  expect((await login(row.mqttUsername, row.secret)).ok).toBe(false);
  await status(row.deviceId, 'manufacturing');
  await status(row.deviceId, 'manufactured');
  expect((await login(row.mqttUsername, row.secret)).ok).toBe(true);
  expect(await s.db('devices').where({ id: row.deviceId }).first('broker_generation')).toEqual({ broker_generation: 1 });
});
