// A fleet against the run's broker: every device connects, publishes paced (never flat out), and
// a subscriber (standing in for the platform's bridge) receives exactly what the fleet counts.
// How close the achieved rate comes to the target is a speed, measured by scripts/bench/ingest.ts:
// a busy machine slows the fleet or makes its timer wheel catch up in bursts, so no bound here is tight.
import { parseTopic, topics } from '../domain/topics';
import { testEnv } from '../test/support/env';
import { assignModels, Fleet, generateCredentials } from './fleet';
import { registerDevices } from '../test/support/broker';
import { clearRetained, plainClient } from './testing/mqtt-watch';

const url = testEnv().mqttUrl;

it('assigns models in the mix proportions, interleaved', () => {
  const models = assignModels(10, { 'ev-charger': 0.5, thermostat: 0.3, lock: 0.2 });
  const count = (m: string, xs = models) => xs.filter((x) => x === m).length;
  expect([count('ev-charger'), count('thermostat'), count('lock')]).toEqual([5, 3, 2]);
  const first5 = models.slice(0, 5);
  expect(count('ev-charger', first5)).toBeGreaterThanOrEqual(2);
  expect(count('lock', first5)).toBeGreaterThanOrEqual(1);
  expect(() => assignModels(3, { toaster: 1 })).toThrow(/unknown device model/);
  expect(() => assignModels(3, { lock: 0 })).toThrow(/no positive weight/);
});

it('200 devices connect; publishing is paced; every value published arrives exactly once', async () => {
  const creds = generateCredentials(200);
  await registerDevices(creds);
  const ids = new Set(creds.map((c) => c.deviceId));
  const received = new Map<string, number>(); // "<id>/<node>/<property>" → count
  const sub = await plainClient(url);
  sub.on('message', (topic) => {
    const t = parseTopic(topic);
    if (t?.kind !== 'value' || !ids.has(t.deviceId)) return;
    const key = `${t.deviceId}/${t.node}/${t.property}`;
    received.set(key, (received.get(key) ?? 0) + 1);
  });
  await sub.subscribeAsync(
    creds.map((c) => `${topics.device(c.deviceId)}/+/+`),
    { qos: 1 },
  );
  const target = 2_000;
  const expectedProperties = 100 * 6 + 60 * 4 + 40 * 3; // every property of every model in the mix
  let startedAt = 0;
  const fleet = new Fleet({ devices: creds, mqttUrl: testEnv().brokerUrl, mix: { 'ev-charger': 0.5, thermostat: 0.3, lock: 0.2 }, targetRate: target, connectRate: 500, qos: 1 });
  try {
    expect(fleet.targetRate).toBeCloseTo(target, 6);
    expect(fleet.stats().models).toEqual({ 'ev-charger': 100, thermostat: 60, lock: 40 });
    startedAt = performance.now();
    fleet.start();
    await fleet.waitConnected(200, 20_000);
    expect(fleet.stats()).toMatchObject({ connected: 200, connects: 200, reconnects: 0, connectFailures: 0 });

    // Paced: far below what 200 unpaced devices would send, on any machine (a stalled one only slows it).
    const rate = await fleet.measureRate(2_000);
    expect(rate).toBeGreaterThan(0);
    expect(rate).toBeLessThan(target * 3);
  } finally {
    await fleet.stop();
  }
  const elapsedS = (performance.now() - startedAt) / 1000;
  const s = fleet.stats();
  expect(s.valuesFailed).toBe(0);
  expect(s.valuesPublished).toBe(s.valuesSent);
  // Over the whole run as well (the announcement of every value on connect included).
  expect(s.valuesSent).toBeLessThan(target * 3 * elapsedS + expectedProperties);

  // Every acknowledged value reached the subscriber once: per device, per property.
  const expected = new Map<string, number>();
  for (const [id, perProperty] of fleet.counts()) for (const [key, n] of Object.entries(perProperty)) expected.set(`${id}/${key}`, n);
  const total = [...expected.values()].reduce((a, b) => a + b, 0);
  expect(total).toBe(s.valuesPublished);
  const deadline = Date.now() + 10_000;
  const sum = () => [...received.values()].reduce((a, b) => a + b, 0);
  while (sum() < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // and nothing more than that
  expect(received).toEqual(expected);
  expect(expected.size).toBe(expectedProperties);

  await sub.endAsync();
  await clearRetained(url, [...ids]);
}, 45_000);
