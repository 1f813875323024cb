// MQTT_AUTH=dynsec: the platform manages an external Mosquitto through its dynamic-security plugin
// (broker/dynsec.ts). Against a real Mosquitto 2 with the plugin, started with only an admin:
// the worker's preparation lets the platform's clients in with their rights, device logins put by
// the store are the only way in, a device reaches its own subtree only, removal cuts a connected
// device off, a rotation refuses the old secret, and every operation can be repeated.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { dynsecInitialConfig, dynsecStore } from '../broker/dynsec';
import { platformLogins } from '../broker/stores';
import { deviceMqttUsername } from '../domain/broker-identity';
import { CredentialDeriver } from '../domain/credentials';
import { newDeviceId } from '../domain/ids';
import { ALL_DEVICES_FILTER, topics } from '../domain/topics';
import { freePort } from '../runtime/embedded/free-port';
import { findDynsecPlugin, findMosquitto, startMosquitto, type RunningMosquitto } from '../runtime/embedded/mosquitto';
import { loadConfig } from '../runtime/config';
import { credentialStoreFor } from '../broker/stores';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const credentials = new CredentialDeriver(randomBytes(32));
const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
let broker: RunningMosquitto;
let dir: string;
let store: ReturnType<typeof dynsecStore>;
const open: MqttClient[] = [];

const a = { id: newDeviceId(), secret: credentials.deviceSecret('A', 1) };
const b = { id: newDeviceId(), secret: credentials.deviceSecret('B', 1) };
const loginOf = (d: { id: string; secret: string }) => ({ username: deviceMqttUsername(d.id), password: d.secret });
const platform = (name: string) => platformLogins(credentials).find((l) => l.username === name)!;

function login(l: { username: string; password: string }): Promise<{ ok: boolean; client: MqttClient; error?: string }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(broker.url, { ...l, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 5 });
    open.push(client);
    client.once('connect', () => resolve({ ok: true, client }));
    client.once('error', (err) => resolve({ ok: false, client, error: err.message }));
  });
}

async function loggedIn(l: { username: string; password: string }): Promise<MqttClient> {
  const r = await login(l);
  if (!r.ok) throw new Error(`${l.username} refused: ${r.error}`);
  return r.client;
}

/** The SUBACK's verdict: true when granted. */
async function subscribes(c: MqttClient, filter: string): Promise<boolean> {
  try {
    const granted = await c.subscribeAsync(filter, { qos: 1 });
    return granted.every((g) => g.qos < 128);
  } catch {
    return false;
  }
}

function collect(c: MqttClient): string[] {
  const seen: string[] = [];
  c.on('message', (topic, payload) => seen.push(`${topic}=${payload.toString()}`));
  return seen;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const plugin = findDynsecPlugin();
  const bin = findMosquitto();
  if (!plugin || !bin) throw new Error('this test needs Mosquitto 2 and its dynamic-security plugin (mosquitto_dynamic_security.so)');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-dynsec-'));
  const configFile = path.join(dir, 'dynamic-security.json');
  fs.writeFileSync(configFile, dynsecInitialConfig(admin));
  broker = await startMosquitto({ bin, port: await freePort(), dir, persistent: false, log: quiet, dynsec: { plugin, configFile } });
  store = dynsecStore({ url: broker.url, admin, timeoutMs: 10_000 });
  await store.prepare!(platformLogins(credentials));
  await store.put([loginOf(a), loginOf(b)]);
});

afterAll(async () => {
  for (const c of open) c.end(true);
  await store?.close();
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('MQTT_AUTH=dynsec is configured by the admin login and gives the worker this store', () => {
  expect(() => loadConfig({ MQTT_URL: 'mqtt://broker:1883', MQTT_AUTH: 'dynsec' })).toThrow(/MQTT_DYNSEC_PASSWORD/);
  const cfg = loadConfig({ MQTT_URL: broker.url, MQTT_AUTH: 'dynsec', MQTT_DYNSEC_PASSWORD: admin.password });
  const s = credentialStoreFor(cfg, broker.url);
  expect(s.kind).toBe('dynsec');
  return s.close();
});

test('devices log in with their secret only; strangers, wrong secrets and anonymous clients are refused', async () => {
  expect((await login(loginOf(a))).ok).toBe(true);
  expect((await login({ username: loginOf(a).username, password: 'wrong-secret' })).ok).toBe(false);
  expect((await login(loginOf({ id: newDeviceId(), secret: 'x' }))).ok).toBe(false);
  expect((await login({ username: '', password: '' })).ok).toBe(false);
  // The admin login is the operator's, not a device's: the platform clients have their own.
  for (const l of platformLogins(credentials)) expect((await login(l)).ok).toBe(true);
});

test('a device reaches only its own subtree; the bridge reads everything through its shared subscription', async () => {
  const devA = await loggedIn(loginOf(a));
  const devB = await loggedIn(loginOf(b));
  const bridge = await loggedIn(platform('rdm-bridge'));
  const group = credentials.shareGroup('rdm-bridge');
  expect(await subscribes(bridge, `$share/${group}/${ALL_DEVICES_FILTER}`)).toBe(true);
  const bridgeSaw = collect(bridge);
  const bSaw = collect(devB);
  expect(await subscribes(devB, `homie/${loginOf(b).username}/#`)).toBe(true);

  // A's attempts outside its tree are refused at SUBSCRIBE (the plugin checks subscriptions).
  for (const f of ['#', 'homie/#', 'homie/+/#', `homie/${loginOf(b).username}/#`, '$SYS/#', `$share/${group}/homie/#`, `$share/x/homie/${loginOf(a).username}/#`, '$CONTROL/dynamic-security/#']) {
    expect([f, await subscribes(devA, f)]).toEqual([f, false]);
  }
  expect(await subscribes(devA, `homie/${loginOf(a).username}/#`)).toBe(true);

  // A writes into B's tree and into its own: only its own arrives anywhere.
  const intoB = topics.property(b.id, 'sensor', 'temperature');
  const own = topics.property(a.id, 'sensor', 'temperature');
  await devA.publishAsync(intoB, 'forged', { qos: 1 }).catch(() => undefined);
  await devA.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify({ commands: [{ command: 'deleteClient', username: loginOf(b).username }] }), { qos: 1 }).catch(() => undefined);
  await devA.publishAsync(own, '21.5', { qos: 1 });
  await sleep(300);
  expect(bridgeSaw).toEqual([`${own}=21.5`]);
  expect(bSaw).toEqual([]);
  // B's login survived A's forged control command.
  expect((await login(loginOf(b))).ok).toBe(true);
});

test('removing a login cuts the connected device off at once and refuses it after; removal repeats', async () => {
  const c = await loggedIn(loginOf(a));
  const closed = new Promise<number>((r) => c.once('close', () => r(Date.now())));
  const t0 = Date.now();
  await store.remove([loginOf(a).username]);
  expect((await Promise.race([closed, sleep(1_000).then(() => Number.NaN)])) - t0).toBeLessThan(1_000);
  expect((await login(loginOf(a))).ok).toBe(false);
  await store.remove([loginOf(a).username]); // already gone: nothing to do, no error
  await store.put([loginOf(a)]); // unblock
  expect((await login(loginOf(a))).ok).toBe(true);
});

test('a rotation replaces the password: the old one is refused and its connection cut; putting twice is harmless', async () => {
  const old = await loggedIn(loginOf(b));
  const closed = new Promise<void>((r) => old.once('close', () => r()));
  const rotated = { id: b.id, secret: credentials.deviceSecret(b.id, 2) };
  await store.put([loginOf(rotated)]);
  await store.put([loginOf(rotated)]);
  await Promise.race([closed, sleep(1_000).then(() => Promise.reject(new Error('the old session was not cut off')))]);
  expect((await login(loginOf(b))).ok).toBe(false);
  expect((await login(loginOf(rotated))).ok).toBe(true);
  await store.prepare!(platformLogins(credentials)); // a second worker's start
  expect((await login(platform('rdm-api'))).ok).toBe(true);
});

test('many logins in one call are sent as a few messages and all work', async () => {
  const many = Array.from({ length: 150 }, () => ({ id: newDeviceId(), secret: randomBytes(16).toString('hex') }));
  const t0 = Date.now();
  await store.put(many.map(loginOf));
  const ms = Date.now() - t0;
  for (const d of [many[0]!, many[74]!, many[149]!]) expect((await login(loginOf(d))).ok).toBe(true);
  await store.remove(many.map((d) => loginOf(d).username));
  expect((await login(loginOf(many[0]!))).ok).toBe(false);
  expect(ms).toBeLessThan(20_000);
});

test('a wrong admin password fails the preparation with a clear error instead of hanging', async () => {
  const bad = dynsecStore({ url: broker.url, admin: { username: 'admin', password: 'not-it' }, timeoutMs: 1_500 });
  await expect(bad.prepare!(platformLogins(credentials))).rejects.toThrow(/did not accept the admin login/);
  await bad.close();
});
