// Control round trip: PUT /api/v1/devices/:id/sensors/:node/:property → MQTT /set → the device
// applies and echoes → 200 with the confirmed value; p50/p90/p99/max, next to a raw MQTT
// publish → echo round trip with the same device and broker.
//
//   npx tsx scripts/bench/control.ts [--count 2000] [--warmup 1000] [--concurrency 8] [--check]
//
// The real API in this process (buildApp, DeviceRequests over an MQTT client, PostgreSQL; the
// control routes never call Temporal, so its connection is a lazy one that never connects), the
// bridge as a child process (it stores the devices' self-description, which tells the API that the
// property is settable and the device online, and it stores every echo meanwhile), reference-
// firmware devices (model ev-charger) in a child process, a Mosquitto of the run's own with
// set_tcp_nodelay, and node's fetch (undici, keep-alive) as the HTTP client in this process.
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { Client, Connection } from '@temporalio/client';
import { buildApp } from '../../api/app';
import { ephemeralSigner, firmwareDeps } from '../../api/firmware-deps';
import { DeviceRequests } from '../../api/device-requests';
import os from 'node:os';
import path from 'node:path';
import { ensureBootstrapAdmin } from '../../api/bootstrap-admin';
import { CredentialDeriver, newApiToken } from '../../domain/credentials';
import { topics } from '../../domain/topics';
import { createDb } from '../../db/knex';
import { Device } from '../../firmware/device';
import { generateCredentials, type FleetCredential } from '../../firmware/fleet';
import { connectMqtt } from '../../runtime/mqtt-client';
import {
  Targets, ProcMonitor, awaitQuiet, forkDevices, insertDevices, machineLine, ownMosquitto, pct, percentile, quiet, runBench, scratchDatabase, sleep, startBridgeProcess, table, type Cleanup,
} from './support';

const TARGET_P50_MS = 3;
const TARGET_P99_MS = 15;

interface Line {
  name: string;
  latencies: number[];
  /** The API's own measure of the MQTT part (its `latencyMs`), when an API call. */
  inner: number[];
  elapsedMs: number;
  cpu: Record<string, number>;
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');

function summary(l: Line): string[] {
  const s = [...l.latencies].sort((x, y) => x - y);
  const inner = [...l.inner].sort((x, y) => x - y);
  return [
    l.name,
    String(s.length),
    ms(percentile(s, 50)),
    ms(percentile(s, 90)),
    ms(percentile(s, 99)),
    ms(s[s.length - 1] ?? NaN),
    inner.length ? `${ms(percentile(inner, 50))} / ${ms(percentile(inner, 99))}` : '',
    String(Math.round((s.length / l.elapsedMs) * 1000)),
    pct(l.cpu.api ?? 0),
    pct(l.cpu.devices ?? 0),
    pct(l.cpu.bridge ?? 0),
    pct(l.cpu.mosquitto ?? 0),
    pct(l.cpu.postgres ?? 0),
    pct(l.cpu.softirq ?? 0),
    pct(l.cpu.other ?? 0),
  ];
}

/**
 * On a shared machine another job can start in the middle of a line: a line during which other
 * processes used more than DISTURBED_CPU % of a core is measured again (at most 3 times, after
 * waiting for quiet) and the least disturbed attempt is kept; its `other` CPU is printed.
 */
const DISTURBED_CPU = 25;

async function measure(
  mon: ProcMonitor,
  name: string,
  workers: number,
  perWorker: number,
  call: (worker: number, i: number) => Promise<number | null>,
): Promise<Line> {
  let best: Line | null = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const l = await measureOnce(mon, name, workers, perWorker, call);
    if (!best || (l.cpu.other ?? 0) < (best.cpu.other ?? 0)) best = l;
    if ((l.cpu.other ?? 0) <= DISTURBED_CPU) break;
    console.log(`  "${name}": other processes used ${pct(l.cpu.other ?? 0)} of a core meanwhile${attempt < 3 ? ': measuring again' : ''}`);
    if (attempt < 3) await awaitQuiet(120);
  }
  return best!;
}

/** Runs `workers` loops of `perWorker` calls each; every call's wall time is recorded. */
async function measureOnce(
  mon: ProcMonitor,
  name: string,
  workers: number,
  perWorker: number,
  call: (worker: number, i: number) => Promise<number | null>,
): Promise<Line> {
  const latencies: number[] = [];
  const inner: number[] = [];
  const p0 = mon.snapshot();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) {
        const start = performance.now();
        const v = await call(w, i);
        latencies.push(performance.now() - start);
        if (v !== null) inner.push(v);
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  return { name, latencies, inner, elapsedMs, cpu: mon.cpu(p0, mon.snapshot()) };
}

/** A plain MQTT client's set → echo: publish `<prop>/set` (QoS 1), wait for the non-retained value. */
function rawRoundTrip(client: MqttClient) {
  const waiters = new Map<string, { payload: string; resolve: () => void }>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain) return;
    const w = waiters.get(topic);
    if (w && payload.toString() === w.payload) {
      waiters.delete(topic);
      w.resolve();
    }
  });
  return (deviceId: string, node: string, property: string, payload: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const topic = topics.property(deviceId, node, property);
      const timer = setTimeout(() => reject(new Error(`no echo on ${topic} within 5 s`)), 5_000);
      waiters.set(topic, { payload, resolve: () => (clearTimeout(timer), resolve()) });
      client.publish(topics.set(deviceId, node, property), payload, { qos: 1 });
    });
}

// ------------------------------------------------------------------ the devices (a child process)

/** Reference-firmware devices in a process of their own, as real devices would be: the API process's CPU is then its own. */
function devicesChild(): void {
  let devices: Device[] = [];
  process.once('message', (m: { mqttUrl: string; creds: FleetCredential[] }) => {
    devices = m.creds.map((c) => new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: m.mqttUrl, model: 'ev-charger' }));
    for (const d of devices) d.start();
    void Promise.all(devices.map((d) => d.waitConnected(30_000))).then(
      () => process.send!({ ready: true }),
      (err: Error) => process.send!({ error: err.message }),
    );
  });
  process.on('disconnect', () => {
    void Promise.all(devices.map((d) => d.stop())).finally(() => process.exit(0));
  });
}

const startDevices = (cleanup: Cleanup, mqttUrl: string, creds: FleetCredential[]) => forkDevices(cleanup, __filename, mqttUrl, creds);

// ------------------------------------------------------------------ main

async function main(cleanup: Cleanup): Promise<number> {
  const { values: a } = parseArgs({
    options: {
      count: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '8' },
      check: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const count = Number(a.count);
  const warmup = Number(a.warmup);
  const conc = Number(a.concurrency);
  if (![count, conc].every((v) => Number.isInteger(v) && v > 0) || !(warmup >= 0)) throw new Error('--count, --concurrency: positive integers; --warmup ≥ 0');

  console.log(`machine: ${await machineLine()}`);
  console.log(
    `control: ${count} PUTs per line after ${warmup} warm-up, sequential on one device, then ${conc} in flight over ${conc} devices (ev-charger); ` +
      `raw MQTT set → echo with the same counts. API and HTTP client in this process; devices, bridge, Mosquitto, PostgreSQL each in their own.`,
  );

  const { url: databaseUrl, db, name: dbName } = await scratchDatabase(cleanup, 'control');
  const broker = await ownMosquitto(cleanup);
  const bridge = await startBridgeProcess(cleanup, { databaseUrl, mqttUrl: broker.url });
  const creds = generateCredentials(conc).map((c) => ({ ...c, model: 'ev-charger' }));
  await insertDevices(db, creds, 'bench control');

  const devices = await startDevices(cleanup, broker.url, creds);
  const ids = creds.map((c) => c.deviceId);
  // The bridge has stored the description (settable properties) and $state = ready.
  const until = Date.now() + 30_000;
  for (;;) {
    const r = (await db.raw(
      `SELECT count(*) AS n FROM devices d JOIN device_properties p ON p.device_id = d.id
        WHERE d.id = ANY (?) AND d.online AND p.node = 'charger' AND p.property IN ('relay', 'max-current') AND p.settable`,
      [ids],
    )) as { rows: { n: string }[] };
    if (Number(r.rows[0]!.n) === ids.length * 2) break;
    if (Date.now() > until) throw new Error('the bridge did not store the devices as online with settable properties within 30 s');
    await sleep(100);
  }

  // The API, as api/main.ts builds it.
  const apiDb = createDb(databaseUrl);
  cleanup.add('close the API pool', () => apiDb.destroy());
  const mqtt = connectMqtt(broker.url, 'api');
  cleanup.add('close the API MQTT client', () => mqtt.endAsync(true));
  await new Promise<void>((resolve, reject) => {
    mqtt.once('connect', () => resolve());
    setTimeout(() => reject(new Error('the API could not connect to Mosquitto')), 10_000).unref();
  });
  const requests = new DeviceRequests(mqtt);
  cleanup.add('close DeviceRequests', () => requests.close());
  const connection = Connection.lazy({ address: '127.0.0.1:1' }); // never used by these routes
  const adminToken = newApiToken();
  await ensureBootstrapAdmin(apiDb, os.tmpdir(), adminToken); // ADMIN_TOKEN acts as the platform admin
  const credentials = new CredentialDeriver(Buffer.from('bench-key-0123456789abcdef0123456789abcdef'));
  const app = buildApp({
    db: apiDb,
    temporal: new Client({ connection }),
    taskQueue: 'bench',
    credentials,
    log: quiet,
    adminToken,
    devices: requests,
    readiness: [],
    firmware: firmwareDeps({ db: apiDb, credentials, dir: path.join(os.tmpdir(), 'rdm-bench-firmware'), signer: ephemeralSigner() }),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  cleanup.add('close the API server', () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1`;
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };

  const put = async (deviceId: string, property: string, value: boolean | number): Promise<number> => {
    const res = await fetch(`${base}/devices/${deviceId}/sensors/charger/${property}`, { method: 'PUT', headers, body: JSON.stringify({ value }) });
    const body = (await res.json()) as { latencyMs?: number; value?: unknown };
    if (res.status !== 200 || body.value !== value) throw new Error(`PUT ${property}=${value}: ${res.status} ${JSON.stringify(body)}`);
    return body.latencyMs!;
  };
  // Alternating values: every call changes the device's state.
  const relay = (i: number) => i % 2 === 0;
  const current = (i: number) => (i % 2 === 0 ? 16 : 32);

  const mon = new ProcMonitor({ api: () => [process.pid], devices: () => [devices.pid], bridge: () => [bridge.pid], mosquitto: () => [broker.process.pid], postgres: () => [] }, dbName);
  cleanup.add('stop the process monitor', () => mon.stop());
  const lines: Line[] = [];
  await awaitQuiet();

  for (let i = 0; i < warmup; i++) await put(ids[0]!, 'relay', relay(i));
  lines.push(await measure(mon, 'PUT charger/relay, sequential', 1, count, (_, i) => put(ids[0]!, 'relay', relay(i))));
  lines.push(await measure(mon, 'PUT charger/max-current, sequential', 1, count, (_, i) => put(ids[0]!, 'max-current', current(i))));
  for (let i = 0; i < warmup; i++) await put(ids[i % conc]!, 'relay', relay(i));
  lines.push(await measure(mon, `PUT charger/relay, ${conc} in flight`, conc, Math.ceil(count / conc), (w, i) => put(ids[w]!, 'relay', relay(i))));

  // Raw: the same set → echo without HTTP, the database or the API's checks.
  const raw = connectMqtt(broker.url, 'bench-raw');
  cleanup.add('close the raw MQTT client', () => raw.endAsync(true));
  await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
  await raw.subscribeAsync(ids.flatMap((id) => [topics.property(id, 'charger', 'relay'), topics.property(id, 'charger', 'max-current')]), { qos: 1 });
  const roundTrip = rawRoundTrip(raw);
  const rawSet = async (id: string, property: string, payload: string) => {
    await roundTrip(id, 'charger', property, payload);
    return null;
  };
  for (let i = 0; i < warmup; i++) await rawSet(ids[0]!, 'relay', String(relay(i)));
  lines.push(await measure(mon, 'raw MQTT set → echo, sequential', 1, count, (_, i) => rawSet(ids[0]!, 'relay', String(relay(i)))));
  lines.push(await measure(mon, `raw MQTT set → echo, ${conc} in flight`, conc, Math.ceil(count / conc), (w, i) => rawSet(ids[w]!, 'relay', String(relay(i)))));

  console.log('\nround trips (ms; "MQTT part" is the API\'s own latencyMs: publish → echo inside the request; CPU in % of one core)');
  console.log(table(['line', 'n', 'p50', 'p90', 'p99', 'max', 'MQTT part p50 / p99', 'per s', 'api+client', 'devices', 'bridge', 'mosquitto', 'postgres', 'softirq', 'other'], lines.map(summary)));

  let bs = await bridge.stats();
  for (const until = Date.now() + 10_000; bs.buffered > 0 && Date.now() < until; bs = await bridge.stats()) await sleep(50);
  console.log(`bridge meanwhile: ${bs.received} messages received, ${bs.telemetryRows} telemetry rows, ${bs.dropped} dropped`);

  const targets = new Targets();
  for (const l of lines.slice(0, 2)) {
    const s = [...l.latencies].sort((x, y) => x - y);
    const p50 = percentile(s, 50);
    const p99 = percentile(s, 99);
    targets.add(`${l.name}: p50 ≤ ${TARGET_P50_MS} ms`, p50 <= TARGET_P50_MS, `${ms(p50)} ms`);
    targets.add(`${l.name}: p99 ≤ ${TARGET_P99_MS} ms`, p99 <= TARGET_P99_MS, `${ms(p99)} ms`);
  }
  targets.print();
  return targets.exitCode(a.check);
}

if (process.argv.includes('--role')) devicesChild();
else runBench(main);
