// The embedded Mosquitto: speaks MQTT 5 with shared subscriptions, keeps retained messages across a
// restart when persistent, and explains a busy port.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { createLogger } from '../logger';
import { freePort } from './free-port';
import { findMosquitto, startMosquitto, type RunningMosquitto } from './mosquitto';

const log = createLogger('silent', 'test');
const bin = findMosquitto();
const maybe = bin ? describe : describe.skip;

async function connect(url: string, clientId: string) {
  return mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0 });
}

maybe('embedded Mosquitto', () => {
  const dirs: string[] = [];
  const running: RunningMosquitto[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-mosq-test-'));
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    for (const r of running) await r.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('splits a shared subscription between its members (MQTT 5)', async () => {
    const broker = await startMosquitto({ bin: bin!, port: await freePort(), dir: tmp(), persistent: false, log });
    running.push(broker);
    const a = await connect(broker.url, 'share-a');
    const b = await connect(broker.url, 'share-b');
    const got = { a: 0, b: 0 };
    a.on('message', () => got.a++);
    b.on('message', () => got.b++);
    await a.subscribeAsync('$share/g/t/#', { qos: 1 });
    await b.subscribeAsync('$share/g/t/#', { qos: 1 });
    const pub = await connect(broker.url, 'share-pub');
    for (let i = 0; i < 200; i++) await pub.publishAsync(`t/${i}`, String(i), { qos: 1 });
    const until = Date.now() + 15_000; // a deadline, not a speed: a busy machine only delays delivery
    while (got.a + got.b < 200 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(got.a + got.b).toBe(200);
    expect(got.a).toBeGreaterThan(0);
    expect(got.b).toBeGreaterThan(0);
    await Promise.all([a.endAsync(), b.endAsync(), pub.endAsync()]);
  });

  it('keeps retained messages across a restart when persistent', async () => {
    const dir = tmp();
    const port = await freePort();
    const first = await startMosquitto({ bin: bin!, port, dir, persistent: true, log });
    const pub = await connect(first.url, 'persist-pub');
    await pub.publishAsync('keep/me', 'hello', { qos: 1, retain: true });
    await pub.endAsync();
    await first.stop(); // SIGTERM: Mosquitto saves its database on the way out
    const second = await startMosquitto({ bin: bin!, port, dir, persistent: true, log });
    running.push(second);
    const sub = await connect(second.url, 'persist-sub');
    const got = new Promise<string>((resolve) => sub.on('message', (_t, m) => resolve(m.toString())));
    await sub.subscribeAsync('keep/me', { qos: 1 });
    await expect(got).resolves.toBe('hello');
    await sub.endAsync();
  });

  it('refuses a busy port with a message that says what to do', async () => {
    const broker = await startMosquitto({ bin: bin!, port: await freePort(), dir: tmp(), persistent: false, log });
    running.push(broker);
    await expect(startMosquitto({ bin: bin!, port: broker.port, dir: tmp(), persistent: false, log })).rejects.toThrow(/already in use.*MQTT_PORT/);
  });
});
