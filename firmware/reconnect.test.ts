// The broker going away under a device: a Mosquitto of the test's own, killed and restarted.
import { newDeviceId } from '../domain/ids';
import { topics } from '../domain/topics';
import { Device } from './device';
import { OwnBroker } from './testing/own-broker';
import { TreeWatcher } from './testing/mqtt-watch';

let broker: OwnBroker;

/** Waits for `check` with a deadline far beyond any machine's slowness. */
async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  broker = await OwnBroker.create();
});

afterAll(async () => {
  await broker.dispose();
});

it('reconnects with growing, jittered delays, keeps simulating offline, and publishes what changed when back', async () => {
  await broker.start();
  const id = newDeviceId();
  const d = new Device({
    deviceId: id,
    secret: 's',
    mqttUrl: broker.url,
    model: 'thermostat',
    publishIntervalMs: 50,
    backoff: { initialMs: 100, maxMs: 800, factor: 2 },
    connectTimeoutMs: 1_000,
  });
  const delays: { attempt: number; delayMs: number }[] = [];
  d.on('reconnect-scheduled', (e) => delays.push(e));
  const watcher = await TreeWatcher.open(broker.url, topics.deviceAll(id));
  try {
    d.start();
    await d.waitConnected(5_000);
    await watcher.value(topics.state(id), 'ready');

    const lost = d.waitFor('disconnected', 5_000);
    await broker.stop(); // SIGKILL: no goodbye, the socket just closes
    await lost;
    expect(d.connection).not.toBe('online');

    // While the broker is down: simulated time keeps going (at 50 ms a step; a busy machine only
    // makes it later), local changes are kept.
    const steps = d.steps;
    await until(() => d.steps - steps >= 3, 'simulation steps while offline');
    d.setPublishInterval(60_000); // no more steps: the offline value below is what must come back
    expect(d.setSensor('thermostat', 'temperature', 33.3).ok).toBe(true);
    expect(d.setLocal('thermostat', 'setpoint', 27.5).ok).toBe(true);
    // Failed attempts back off: each delay within [base/2, base] of a doubling base, capped.
    // (How many attempts fit in the outage depends on the machine's speed: wait for four.)
    await until(() => delays.length >= 4, 'four reconnection attempts');
    expect(d.value('thermostat', 'setpoint')).toBe(27.5);
    expect(d.value('thermostat', 'temperature')).toBe(33.3);
    delays.forEach(({ attempt, delayMs }, i) => {
      expect(attempt).toBe(i + 1);
      const base = Math.min(800, 100 * 2 ** i);
      expect(delayMs).toBeGreaterThanOrEqual(base / 2);
      expect(delayMs).toBeLessThanOrEqual(base);
    });
    expect(new Set(delays.map((x) => x.delayMs)).size).toBeGreaterThan(1);
    expect(d.stats.connectFailures).toBe(delays.length - 1);

    const back = d.waitFor('connected', 5_000);
    await broker.start(); // a fresh broker: nothing retained, the device must announce everything again
    expect(await back).toEqual({ reconnect: true, connects: 2 });
    await watcher.value(topics.state(id), 'ready', 5_000);
    await watcher.value(topics.property(id, 'thermostat', 'temperature'), '33.3');
    await watcher.value(topics.property(id, 'thermostat', 'setpoint'), '27.5');
    expect(watcher.get(`homie/${id.toLowerCase()}/$homie`)).toBe('4.0.0');
    expect(watcher.get(`homie/${id.toLowerCase()}/thermostat/$properties`)).toBe('setpoint,mode,temperature,humidity');
    expect(d.stats.reconnects).toBe(1);
    // The retry counter starts over after a successful connection.
    expect(d.snapshot().connection.retryAttempt).toBe(0);
  } finally {
    await d.stop();
    await watcher.close();
  }
});

it('starts while the broker is unreachable and connects when it comes up', async () => {
  await broker.stop();
  const id = newDeviceId();
  const d = new Device({ deviceId: id, secret: 's', mqttUrl: broker.url, model: 'lock', publishIntervalMs: 60_000, backoff: { initialMs: 50, maxMs: 200 } });
  try {
    d.start();
    await d.waitFor('reconnect-scheduled', 2_000);
    expect(d.connection).toBe('offline');
    expect(d.state).toBe('init');
    const connected = d.waitConnected(5_000);
    await broker.start();
    await connected;
    expect(d.state).toBe('ready');
    expect(d.stats).toMatchObject({ connects: 1, reconnects: 0 });
    // The log records made offline are delivered once connected; read-logs has them all along.
    expect(d.logs().map((l) => l.message)).toEqual(expect.arrayContaining(['booted', 'connected']));
  } finally {
    await d.stop();
  }
});
