// Nothing lost, nothing doubled: shared subscriptions split the stream, a full bridge stops
// reading, a crash before the commit loses nothing (the broker sends the unacknowledged messages
// again to the same session), a restart picks up what queued meanwhile, and a broker without
// MQTT 5 (aedes) still works.
import type { MqttClient } from 'mqtt';
import type { Db } from '../db/knex';
import { topics } from '../domain/topics';
import { startEmbeddedBroker } from '../runtime/embedded/mqtt-broker';
import { createDevices, isolatedDatabase, publishAll, publisher, quietLogger, sleep, testBridge, uniqueName, waitFor } from './test-helpers';
import mqtt from 'mqtt';

let db: Db;
let databaseUrl: string;
let dropDb: () => Promise<void>;
let pub: MqttClient;

beforeAll(async () => {
  ({ db, url: databaseUrl, drop: dropDb } = await isolatedDatabase());
  pub = await publisher();
});

afterAll(async () => {
  pub?.end(true);
  await dropDb?.();
});

const count = async (ids: string[]) => Number((await db('telemetry').whereIn('device_id', ids).count({ n: '*' }))[0]!.n);
const distinct = async (ids: string[]) =>
  Number((await db.raw('SELECT count(DISTINCT (device_id, value)) AS n FROM telemetry WHERE device_id = ANY (?)', [ids])).rows[0].n);

function values(ids: string[], perDevice: number, from = 0): [string, string][] {
  const out: [string, string][] = [];
  for (let i = from; i < from + perDevice; i++) for (const d of ids) out.push([topics.property(d, 'env', 'counter'), String(i)]);
  return out;
}

it('two bridges in one share group split the load: nothing lost, nothing twice', async () => {
  const group = uniqueName('g');
  const a = await testBridge({ databaseUrl, group });
  const b = await testBridge({ databaseUrl, group });
  try {
    const ids = await createDevices(db, 40);
    await publishAll(pub, values(ids, 100));
    await waitFor(async () => (await count(ids)) >= 4_000, 15_000, '4000 rows');
    await Promise.all([a.flush(), b.flush()]);
    await sleep(200);
    expect(await count(ids)).toBe(4_000);
    expect(await distinct(ids)).toBe(4_000);
    const [sa, sb] = [a.stats(), b.stats()];
    expect(sa.telemetryRows).toBeGreaterThan(0);
    expect(sb.telemetryRows).toBeGreaterThan(0);
    expect(sa.telemetryRows + sb.telemetryRows).toBe(4_000);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

it('stops reading while the database is slow (bounded buffer) and then stores everything', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const maxBuffered = 300;
  const bridge = await testBridge({ databaseUrl, maxBuffered, batchRows: 100, beforeWrite: () => gate });
  let maxSeen = 0;
  let pausedSeen = false;
  const sampler = setInterval(() => {
    const s = bridge.stats();
    maxSeen = Math.max(maxSeen, s.buffered);
    pausedSeen ||= s.paused;
  }, 5);
  try {
    const ids = await createDevices(db, 10);
    const heap0 = process.memoryUsage().heapUsed;
    await publishAll(pub, values(ids, 300)); // 3000 messages: ten times the bound
    await waitFor(() => bridge.stats().paused, 5_000, 'paused');
    await sleep(300);
    const s = bridge.stats();
    expect(s.buffered).toBeLessThanOrEqual(maxBuffered);
    expect(s.received).toBeLessThanOrEqual(maxBuffered);
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(50 * 1024 * 1024);
    expect(await count(ids)).toBe(0);
    release();
    await waitFor(async () => (await count(ids)) >= 3_000, 15_000, '3000 rows');
    await bridge.flush();
    await sleep(200);
    expect(await count(ids)).toBe(3_000);
    expect(await distinct(ids)).toBe(3_000);
    expect(maxSeen).toBeLessThanOrEqual(maxBuffered);
    expect(pausedSeen).toBe(true);
  } finally {
    clearInterval(sampler);
    release();
    await bridge.stop();
  }
});

it('loses nothing when the bridge dies before the commit: the same session gets the messages again', async () => {
  const group = uniqueName('g');
  const clientId = uniqueName('rdm-bridge-crash');
  const ids = await createDevices(db, 10);
  const first = await testBridge({ databaseUrl, group, clientId, beforeWrite: () => new Promise<void>(() => undefined) }); // never commits
  await publishAll(pub, values(ids, 50));
  await waitFor(() => first.stats().received >= 500, 5_000, 'received');
  await sleep(200);
  await first.stop({ flush: false }); // a crash: no flush, no acknowledgement, socket dropped
  expect(first.stats().acksSent).toBe(0);
  expect(await count(ids)).toBe(0);

  const second = await testBridge({ databaseUrl, group, clientId });
  try {
    await waitFor(async () => (await count(ids)) >= 500, 10_000, 'redelivered');
    await second.flush();
    await sleep(200);
    expect(await count(ids)).toBe(500);
    expect(await distinct(ids)).toBe(500);
  } finally {
    await second.stop();
  }
});

it('stores nothing twice when the bridge dies after a commit but before its acknowledgement', async () => {
  // Batch 1's write is held, later batches commit; acks go out in batch order, so none is sent.
  // After the crash the broker sends all 200 again (DUP set): the committed ones must be
  // recognised (bridge_committed_packets), the others stored.
  const group = uniqueName('g');
  const clientId = uniqueName('rdm-bridge-dup');
  const ids = await createDevices(db, 10);
  const first = await testBridge({ databaseUrl, group, clientId, batchRows: 100, beforeWrite: ({ seq }) => (seq === 1 ? new Promise<void>(() => undefined) : undefined) });
  await publishAll(pub, values(ids, 20));
  await waitFor(async () => (await count(ids)) >= 100, 10_000, 'a later batch committed');
  await sleep(200);
  await first.stop({ flush: false });
  expect(first.stats().acksSent).toBe(0);
  const stored = await count(ids);
  // How many committed depends on how the batches formed (a busy machine flushes smaller ones on
  // time); no ack went out, so every one of them comes back as a redelivery to recognise.
  expect(stored).toBeGreaterThanOrEqual(100);
  expect(stored).toBeLessThanOrEqual(200);

  const second = await testBridge({ databaseUrl, group, clientId });
  try {
    await waitFor(async () => (await count(ids)) >= 200, 10_000, 'redelivered');
    await waitFor(() => second.stats().received >= 200, 10_000, 'all redelivered');
    await second.flush();
    await sleep(300);
    expect(await count(ids)).toBe(200);
    expect(await distinct(ids)).toBe(200);
    // At least every committed one was recognised (a reconnect may redeliver, and skip, some twice).
    expect(second.stats().redeliveredSkipped).toBeGreaterThanOrEqual(stored);
  } finally {
    await second.stop();
  }
});

it('a redelivered message that was never committed is stored although its packet ID has a record of an earlier message', async () => {
  // The broker reuses a packet ID once it has the PUBACK: in a long session every ID has a record
  // of some earlier message. Those records (other content) must not hide the redelivered ones.
  const group = uniqueName('g');
  const clientId = uniqueName('rdm-bridge-reuse');
  await db.raw(
    `INSERT INTO bridge_committed_packets (client_id, block, digests)
     SELECT ?, b, (SELECT array_agg(hashtext((b * 256 + i)::text) ORDER BY i) FROM generate_series(0, 255) AS i) FROM generate_series(0, 255) AS b`,
    [clientId],
  );
  const ids = await createDevices(db, 10);
  const first = await testBridge({ databaseUrl, group, clientId, beforeWrite: () => new Promise<void>(() => undefined) }); // never commits
  await publishAll(pub, values(ids, 30));
  await waitFor(() => first.stats().received >= 300, 5_000, 'received');
  await sleep(200);
  await first.stop({ flush: false });
  expect(await count(ids)).toBe(0);

  const second = await testBridge({ databaseUrl, group, clientId });
  try {
    await waitFor(async () => (await count(ids)) >= 300, 10_000, 'redelivered');
    await second.flush();
    await sleep(200);
    expect(await count(ids)).toBe(300);
    expect(await distinct(ids)).toBe(300);
    expect(second.stats().redeliveredSkipped).toBe(0);
  } finally {
    await second.stop();
  }
});

it('keeps its session across a clean restart: messages published meanwhile arrive, none twice', async () => {
  const group = uniqueName('g');
  const clientId = uniqueName('rdm-bridge-restart');
  const ids = await createDevices(db, 5);
  const first = await testBridge({ databaseUrl, group, clientId });
  await publishAll(pub, values(ids, 20));
  await waitFor(async () => (await count(ids)) >= 100, 5_000, 'first 100');
  await first.stop();
  expect(first.stats().acksSent).toBeGreaterThanOrEqual(100);
  await publishAll(pub, values(ids, 20, 20)); // while no bridge runs
  const second = await testBridge({ databaseUrl, group, clientId });
  try {
    await waitFor(async () => (await count(ids)) >= 200, 10_000, 'queued 100');
    await second.flush();
    await sleep(200);
    expect(await count(ids)).toBe(200);
    expect(await distinct(ids)).toBe(200);
  } finally {
    await second.stop();
  }
});

it('stops promptly in the middle of a stream, and the next session gets the rest: nothing lost', async () => {
  const group = uniqueName('g');
  const clientId = uniqueName('rdm-bridge-midstream');
  const ids = await createDevices(db, 10);
  const first = await testBridge({ databaseUrl, group, clientId, maxBuffered: 200, batchRows: 100, beforeWrite: async () => void (await sleep(30)) });
  const publishing = publishAll(pub, values(ids, 300));
  await waitFor(() => first.stats().paused, 5_000, 'paused');
  const t0 = Date.now();
  await first.stop(); // reading stops, what was read is written and acknowledged, then DISCONNECT
  // Promptly: it does not drain the whole stream first (a generous bound, for a busy machine).
  expect(Date.now() - t0).toBeLessThan(30_000);
  // What the first session stored varies with machine load (even 0 when it had read but not yet
  // committed a batch and the broker redelivers it); the point is the total below.
  expect(await count(ids)).toBeLessThan(3_000);
  await publishing;
  const second = await testBridge({ databaseUrl, group, clientId });
  try {
    await waitFor(async () => (await count(ids)) >= 3_000, 15_000, 'the rest');
    await second.flush();
    await sleep(200);
    expect(await count(ids)).toBe(3_000);
    expect(await distinct(ids)).toBe(3_000);
  } finally {
    await second.stop();
  }
});

it('falls back to MQTT 3.1.1 and a plain subscription on a broker without MQTT 5 (aedes)', async () => {
  const broker = await startEmbeddedBroker({ port: 0, log: quietLogger() });
  const bridge = await testBridge({ databaseUrl, mqttUrl: broker.url });
  const device = mqtt.connect(broker.url, { protocolVersion: 4, clientId: uniqueName('dev'), reconnectPeriod: 0 });
  try {
    expect(bridge.stats().protocol).toBe(4);
    await new Promise((r) => device.once('connect', r));
    const ids = await createDevices(db, 2);
    await publishAll(device, values(ids, 50));
    await waitFor(async () => (await count(ids)) >= 100, 5_000, '100 rows');
    await bridge.flush();
    expect(await count(ids)).toBe(100);
    expect(bridge.stats().acksSent).toBeGreaterThanOrEqual(100);
  } finally {
    device.end(true);
    await bridge.stop();
    await broker.stop();
  }
});
