// The brokers' HTTP auth endpoint (MQTT_AUTH=http), called as EMQX 5 and mosquitto-go-auth call
// it, and the same decisions as aedes hooks (the embedded fallback without Mosquitto): login by
// the CSV's mqtt_username and secret, a device inside its own subtree only, a blocked one refused.
import express from 'express';
import type { Server } from 'node:http';
import mqtt from 'mqtt';
import { aedesAuthHooks, createDeviceAuthenticator } from '../broker/authenticator';
import { brokerAuthRouter } from '../broker/http-auth';
import { startEmbeddedBroker, type EmbeddedBroker } from '../runtime/embedded/mqtt-broker';
import { createLogger } from '../runtime/logger';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { eventually, startStack, type Stack } from './support/stack';

const SECRET = 'broker-secret-0123456789abcdef';
let s: Stack;
let server: Server;
let base: string;
let rows: Provisioning[];
let aedes: EmbeddedBroker;

async function call(path: string, body: unknown, secret: string | null = SECRET) {
  const res = await fetch(`${base}/broker-auth${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  s = await startStack();
  const auth = createDeviceAuthenticator({ db: s.db, credentials: s.credentials, cacheMs: 200 });
  const app = express().use('/broker-auth', brokerAuthRouter({ authenticator: auth, secret: SECRET }));
  server = await new Promise<Server>((r) => {
    const srv = app.listen(0, '127.0.0.1', () => r(srv));
  });
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  aedes = await startEmbeddedBroker({ port: 0, log: createLogger('silent', 'aedes'), auth: aedesAuthHooks(auth) });
  const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'http-auth', count: 3 } })).json()) as { id: string };
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as { provisioning: { status: string } }).provisioning.status === 'ready', 60_000);
  rows = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text());
});

afterAll(async () => {
  await aedes?.stop();
  server?.close();
  await s?.stop();
});

it('answers only the broker: no secret or a wrong one is 401; a malformed request 400', async () => {
  expect((await call('/emqx/authn', { username: 'x', password: 'y' }, null)).status).toBe(401);
  expect((await call('/emqx/authn', { username: 'x', password: 'y' }, `${SECRET}x`)).status).toBe(401);
  expect((await call('/acl', { username: 'x', topic: 'a', acc: 9 })).status).toBe(400);
  expect((await call('/emqx/authz', { username: 'x', action: 'publish' })).status).toBe(400);
});

it('EMQX 5: authn allows the CSV login only; authz keeps a device in its own subtree', async () => {
  const [a, b] = rows as [Provisioning, Provisioning];
  expect((await call('/emqx/authn', { username: a.mqttUsername, password: a.secret, clientid: 'any' })).body).toEqual({ result: 'allow', is_superuser: false });
  for (const [username, password] of [[a.mqttUsername, b.secret], [a.deviceId, a.secret], ['nobody', a.secret], ['', '']]) {
    expect((await call('/emqx/authn', { username, password })).body).toEqual({ result: 'deny', is_superuser: false });
  }
  const authz = async (username: string, action: string, topic: string) => (await call('/emqx/authz', { username, action, topic })).body.result;
  const own = `homie/${a.mqttUsername}`;
  expect(await authz(a.mqttUsername, 'publish', `${own}/env/temperature`)).toBe('allow');
  expect(await authz(a.mqttUsername, 'subscribe', `${own}/+/+/set`)).toBe('allow');
  expect(await authz(a.mqttUsername, 'publish', `homie/${b.mqttUsername}/env/temperature`)).toBe('deny');
  for (const filter of ['#', 'homie/#', 'homie/+/#', `homie/${b.mqttUsername}/#`, '$SYS/#', `$share/g/${own}/#`, '+/+/#']) {
    expect({ filter, result: await authz(a.mqttUsername, 'subscribe', filter) }).toEqual({ filter, result: 'deny' });
  }
  // The platform's own clients: the bridge's shared subscription, the API's sets.
  expect(await authz('rdm-bridge', 'subscribe', '$share/rdm-bridge-x/homie/+/#')).toBe('allow');
  expect(await authz('rdm-api', 'publish', `${own}/env/target/set`)).toBe('allow');
  expect(await authz('rdm-api', 'subscribe', '$share/g/homie/#')).toBe('deny');
});

it('mosquitto-go-auth: /user, /superuser, /acl by status code', async () => {
  const [a, b] = rows as [Provisioning, Provisioning];
  expect((await call('/user', { username: a.mqttUsername, password: a.secret, clientid: 'c' })).status).toBe(200);
  expect((await call('/user', { username: a.mqttUsername, password: 'wrong', clientid: 'c' })).status).toBe(403);
  expect((await call('/superuser', { username: a.mqttUsername })).status).toBe(403);
  const acl = async (acc: number, topic: string) => (await call('/acl', { username: a.mqttUsername, clientid: 'c', topic, acc })).status;
  expect(await acl(1, `homie/${a.mqttUsername}/env/t`)).toBe(200);
  expect(await acl(2, `homie/${a.mqttUsername}/env/t`)).toBe(200);
  expect(await acl(4, `homie/${a.mqttUsername}/#`)).toBe(200);
  expect(await acl(1, `homie/${b.mqttUsername}/env/t`)).toBe(403);
  expect(await acl(2, `homie/${b.mqttUsername}/env/t`)).toBe(403);
  expect(await acl(4, '#')).toBe(403);
});

it('a blocked device is refused once the cache has expired, and let in again when unblocked', async () => {
  const c = rows[2]!;
  expect((await call('/emqx/authn', { username: c.mqttUsername, password: c.secret })).body.result).toBe('allow');
  expect((await s.api(`/api/v1/devices/${c.deviceId}/block`, { method: 'POST' })).status).toBe(200);
  await eventually(async () => (await call('/emqx/authn', { username: c.mqttUsername, password: c.secret })).body.result === 'deny', 2_000, 50);
  expect((await s.api(`/api/v1/devices/${c.deviceId}/unblock`, { method: 'POST' })).status).toBe(200);
  await eventually(async () => (await call('/emqx/authn', { username: c.mqttUsername, password: c.secret })).body.result === 'allow', 2_000, 50);
});

it('aedes with the same hooks: refuses a wrong secret, and subscriptions outside the subtree at SUBSCRIBE', async () => {
  const [a] = rows as [Provisioning];
  const refused = await mqtt.connectAsync(aedes.url, { username: a.mqttUsername, password: 'wrong', reconnectPeriod: 0 }).then(
    () => 'connected',
    (e: Error) => e.message,
  );
  expect(refused).toMatch(/Not authorized/);
  const c = await mqtt.connectAsync(aedes.url, { username: a.mqttUsername, password: a.secret, reconnectPeriod: 0 });
  try {
    const subscribe = (filter: string) => c.subscribeAsync(filter, { qos: 1 }).then((g) => g.map((x) => x.qos), (e: Error) => e.message);
    expect(await subscribe(`homie/${a.mqttUsername}/#`)).toEqual([1]);
    for (const filter of ['#', 'homie/+/#', '$SYS/#']) expect(await subscribe(filter)).toMatch(/Subscribe error/); // SUBACK 0x80
  } finally {
    await c.endAsync(true);
  }
});

it('aedes: a blocked device is cut off within a second, and refused until unblocked', async () => {
  const b = rows[1]!;
  const c = await mqtt.connectAsync(aedes.url, { username: b.mqttUsername, password: b.secret, reconnectPeriod: 0 });
  const closed = new Promise<number>((r) => c.once('close', () => r(Date.now())));
  const sentAt = Date.now();
  expect((await s.api(`/api/v1/devices/${b.deviceId}/block`, { method: 'POST' })).status).toBe(200);
  expect((await closed) - sentAt).toBeLessThan(1_000);
  const again = await mqtt.connectAsync(aedes.url, { username: b.mqttUsername, password: b.secret, reconnectPeriod: 0 }).then(
    (x) => (x.end(true), 'connected'),
    (e: Error) => e.message,
  );
  expect(again).toMatch(/Not authorized/);
  expect((await s.api(`/api/v1/devices/${b.deviceId}/unblock`, { method: 'POST' })).status).toBe(200);
  await eventually(async () => {
    const x = await mqtt.connectAsync(aedes.url, { username: b.mqttUsername, password: b.secret, reconnectPeriod: 0 }).catch(() => null);
    await x?.endAsync(true);
    return x !== null;
  }, 3_000, 100);
});
