// Connections: 10,000 simultaneous device connections from the fleet simulator on this machine,
// with the bridge keeping up: time until all are connected, until the bridge has marked all of
// them online in PostgreSQL, the bridge's lag (messages the broker received vs committed) during
// the ramp and a steady publish rate, memory and CPU per process, then the time until all are
// offline after the fleet stops (abruptly by default: the broker publishes 10,000 last wills).
//
//   npx tsx scripts/bench/connections.ts [--devices 10000] [--connect-rate 1000] [--rate 1000]
//     [--steady 30] [--announce full|values-only] [--stop kill|graceful] [--qos 1|0] [--check]
//
// Fleet (this process), Mosquitto, the bridge (`bridge/main.ts`, a child process) and PostgreSQL
// share the machine. Mosquitto's counters come from its $SYS topics (sys_interval 1).
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import mqtt from 'mqtt';
import { assignModels, Fleet, generateCredentials } from '../../firmware/fleet';
import { MODEL_NAMES } from '../../firmware/models';
import {
  Targets, ProcMonitor, awaitQuiet, insertDevices, int, machineLine, mib, openFilesLimit, ownMosquitto, pct, runBench, scratchDatabase, secs, sleep,
  startBridgeProcess, type Cleanup, type CpuSnapshot,
} from './support';

/** How long after the last device connected the bridge may take to mark all online. */
const ONLINE_WITHIN_MS = 30_000;

interface BrokerSys {
  clients: number;
  heap: number;
}

/**
 * Mosquitto's own counters, from $SYS (published every second with sys_interval 1). Not its
 * publish counter: Mosquitto 2.0.11 leaves retained PUBLISHes out of
 * $SYS/broker/publish/messages/received, and nearly everything a Homie device says is retained.
 */
async function watchBroker(cleanup: Cleanup, url: string): Promise<BrokerSys> {
  const sys: BrokerSys = { clients: 0, heap: 0 };
  const c = mqtt.connect(url, { clientId: `bench-sys-${process.pid}`, reconnectPeriod: 1_000 });
  cleanup.add('close the $SYS watcher', () => c.endAsync(true));
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  (c.stream as Socket).setNoDelay(true);
  const fields: Record<string, keyof BrokerSys> = {
    '$SYS/broker/clients/connected': 'clients',
    '$SYS/broker/heap/current': 'heap',
  };
  c.on('message', (topic, payload) => {
    const f = fields[topic];
    if (f) sys[f] = Number(payload.toString());
  });
  await c.subscribeAsync(Object.keys(fields), { qos: 0 });
  return sys;
}

/** Every message the devices handed to their clients: values and everything else (description, $state, config, logs). */
function fleetMessages(fleet: Fleet): number {
  let sum = 0;
  for (const d of fleet.devices) {
    const c = d.counters();
    sum += c.other;
    for (const k in c.sent) sum += c.sent[k]!;
  }
  return sum;
}

async function main(cleanup: Cleanup): Promise<number> {
  const { values: a } = parseArgs({
    options: {
      devices: { type: 'string', default: '10000' },
      'connect-rate': { type: 'string', default: '1000' },
      rate: { type: 'string', default: '1000' },
      steady: { type: 'string', default: '30' },
      announce: { type: 'string', default: 'full' },
      stop: { type: 'string', default: 'kill' },
      qos: { type: 'string', default: '1' },
      check: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const n = Number(a.devices);
  const connectRate = Number(a['connect-rate']);
  const rate = Number(a.rate);
  const steadyS = Number(a.steady);
  if (![n, connectRate, rate, steadyS].every((v) => Number.isFinite(v) && v > 0)) throw new Error('--devices, --connect-rate, --rate, --steady: positive numbers');
  if (a.announce !== 'full' && a.announce !== 'values-only') throw new Error('--announce full|values-only');
  if (a.stop !== 'kill' && a.stop !== 'graceful') throw new Error('--stop kill|graceful');
  const qos = a.qos === '0' ? 0 : 1;

  console.log(`machine: ${await machineLine()}`);
  console.log(
    `connections: ${int(n)} devices (even mix of ${MODEL_NAMES.join('/')}, ${a.announce} Homie announce, QoS ${qos}), connect ramp ${int(connectRate)}/s, ` +
      `then ${int(rate)} value msg/s for ${steadyS} s, then stop (${a.stop === 'kill' ? 'abrupt: sockets dropped, last wills' : 'graceful: $state disconnected'})`,
  );
  const fdLimit = openFilesLimit(process.pid) ?? 0;
  if (fdLimit < n + 500) console.log(`WARNING: this process may open ${fdLimit} files; ${int(n)} devices need ${int(n)} sockets plus its own`);

  const { url: databaseUrl, db, name: dbName } = await scratchDatabase(cleanup, 'connections');
  const broker = await ownMosquitto(cleanup, ['sys_interval 1']);
  const mosqFds = openFilesLimit(broker.process.pid);
  console.log(`Mosquitto pid ${broker.process.pid}: max_connections -1 (unlimited), open files limit ${mosqFds === Infinity ? 'unlimited' : int(mosqFds ?? 0)}`);
  if (mosqFds !== null && mosqFds < n + 100) console.log(`WARNING: Mosquitto's open files limit (${mosqFds}) is below ${int(n)} connections`);
  const models = assignModels(n, Object.fromEntries(MODEL_NAMES.map((m) => [m, 1])));
  const creds = generateCredentials(n).map((c, i) => ({ ...c, model: models[i]! }));
  await insertDevices(db, creds, 'bench connections');
  const bridge = await startBridgeProcess(cleanup, { databaseUrl, mqttUrl: broker.url });
  const sys = await watchBroker(cleanup, broker.url);
  const mon = new ProcMonitor({ fleet: () => [process.pid], bridge: () => [bridge.pid], mosquitto: () => [broker.process.pid], postgres: () => [] }, dbName);
  cleanup.add('stop the process monitor', () => mon.stop());
  const onlineCount = async () => Number(((await db.raw('SELECT count(*) AS n FROM devices WHERE online')) as { rows: { n: string }[] }).rows[0]!.n);

  const fleet = new Fleet({ devices: creds, mqttUrl: broker.url, targetRate: rate, connectRate, qos, bench: a.announce === 'values-only', seed: 'connections' });
  let fleetStopped = false;
  cleanup.add('stop the fleet', () => (fleetStopped ? undefined : fleet.stop({ graceful: false })));
  await awaitQuiet();

  // The timeline: one row every `every` seconds, the phase times from 4 samples a second.
  const t0 = performance.now();
  const at = () => performance.now() - t0;
  let tConnected: number | null = null;
  let tOnline: number | null = null;
  let tOffline: number | null = null;
  let tStop: number | null = null;
  let maxBacklog = 0;
  let maxBuffered = 0;
  let online = 0;
  let lastRow = { t: 0, cpu: mon.snapshot() as CpuSnapshot };
  const peakRss = { fleet: 0, bridge: 0, mosquitto: 0 };
  const header = ['t', 'started', 'connected', 'broker clients', 'online (pg)', 'retries', 'published', 'bridge committed', 'backlog', 'telemetry', 'CPU fleet', 'bridge', 'mosquitto', 'postgres', 'softirq', 'other', 'RSS fleet', 'bridge', 'mosquitto'];
  const widths = header.map((h) => Math.max(h.length, 7));
  const printRow = (cells: string[]) => console.log(cells.map((c, i) => c.padStart(widths[i]!)).join(' '));
  /** 4 samples a second for the phase times; every 2 s a row with the counts that cost more to take. */
  const sample = async (print: boolean) => {
    const f = fleet.stats();
    const b = await bridge.stats();
    online = await onlineCount();
    const t = at();
    if (tConnected === null && f.connected === n) tConnected = t;
    if (tOnline === null && online === n) tOnline = t;
    if (tStop !== null && tOffline === null && online === 0) tOffline = t;
    for (const g of ['fleet', 'bridge', 'mosquitto'] as const) peakRss[g] = Math.max(peakRss[g], mon.rss(g));
    if (!print) return;
    const published = fleetMessages(fleet);
    const backlog = Math.max(0, published - b.committed);
    if (tStop === null) {
      maxBacklog = Math.max(maxBacklog, backlog);
      maxBuffered = Math.max(maxBuffered, b.buffered);
    }
    const snap = mon.snapshot();
    const cpu = mon.cpu(lastRow.cpu, snap);
    lastRow = { t, cpu: snap };
    printRow([
      secs(t),
      int(f.started),
      int(f.connected),
      int(sys.clients),
      int(online),
      int(f.connectFailures + f.reconnects),
      int(published),
      int(b.committed),
      int(backlog),
      int(b.telemetryRows),
      pct(cpu.fleet!),
      pct(cpu.bridge!),
      pct(cpu.mosquitto!),
      pct(cpu.postgres!),
      pct(cpu.softirq!),
      pct(cpu.other!),
      mib(mon.rss('fleet')),
      mib(mon.rss('bridge')),
      mib(mon.rss('mosquitto')),
    ]);
    maxClients = Math.max(maxClients, sys.clients);
  };
  let maxClients = 0;
  console.log('\n(published: messages the devices sent; backlog: published − bridge committed; CPU: % of one core over the row\'s 2 s)');
  printRow(header);

  const every = 2_000;
  let nextPrint = every;
  const loop = async (until: () => boolean, deadlineMs: number) => {
    while (!until() && at() < deadlineMs) {
      await sleep(250);
      const print = at() >= nextPrint;
      if (print) nextPrint += every;
      await sample(print);
    }
  };

  // 1. Ramp: every device connected (fleet view: announced, `ready` acknowledged) and online in Postgres.
  const rampMs = (n / connectRate) * 1000;
  fleet.start();
  await loop(() => tConnected !== null && tOnline !== null, rampMs + 120_000);
  const afterRamp = { t: at(), published: fleetMessages(fleet), bridge: await bridge.stats() };
  const rampBacklog = maxBacklog;

  // 2. Steady publishing: the bridge must store what the devices publish, with a bounded backlog.
  const s0 = { t: at(), cpu: mon.snapshot(), bridge: await bridge.stats(), published: fleetMessages(fleet) };
  const steadyEnd = at() + steadyS * 1000;
  maxBacklog = 0;
  maxBuffered = 0;
  await loop(() => false, steadyEnd);
  const s1 = { t: at(), cpu: mon.snapshot(), bridge: await bridge.stats(), published: fleetMessages(fleet) };
  const steadyCpu = mon.cpu(s0.cpu, s1.cpu);
  const steadySeconds = (s1.t - s0.t) / 1000;
  const steadyRss = { fleet: mon.rss('fleet'), bridge: mon.rss('bridge'), mosquitto: mon.rss('mosquitto') };
  const steadyBacklog = Math.max(0, s1.published - s1.bridge.committed);
  maxBacklog = Math.max(maxBacklog, steadyBacklog);
  const publishedRate = (s1.published - s0.published) / steadySeconds;
  const storedRate = (s1.bridge.committed - s0.bridge.committed) / steadySeconds;
  const rowsRate = (s1.bridge.telemetryRows - s0.bridge.telemetryRows) / steadySeconds;

  // 3. Stop: until every device is offline in Postgres.
  tStop = at();
  const stopping = a.stop === 'kill' ? fleet.stop({ graceful: false }) : fleet.stop();
  fleetStopped = true;
  let tStopped: number | null = null;
  void stopping.then(() => (tStopped = at()));
  await loop(() => tOffline !== null, tStop + 120_000);
  await stopping;
  const end = await bridge.stats();
  const endFleet = fleet.stats();

  console.log(`\nsummary (${int(n)} devices, ${a.announce} announce, connect ramp ${int(connectRate)}/s)`);
  const fmt = (t: number | null, from = 0) => (t === null ? 'never' : secs(t - from));
  const lines: [string, string][] = [
    ['all connected (fleet: announced, ready acknowledged)', `${fmt(tConnected)} (the ramp alone: ${secs(rampMs)})`],
    ['connect failures / reconnects', `${int(endFleet.connectFailures)} / ${int(endFleet.reconnects)}`],
    ['broker clients at most', int(maxClients)],
    ['all online in PostgreSQL (bridge)', `${fmt(tOnline)}${tOnline !== null && tConnected !== null ? ` (${secs(tOnline - tConnected)} after the last device connected)` : ''}`],
    ['messages published until all online / max backlog', `${int(afterRamp.published)} (bridge had committed ${int(afterRamp.bridge.committed)}) / ${int(rampBacklog)}`],
    [`steady ${steadyS} s: published / bridge committed`, `${int(publishedRate)}/s / ${int(storedRate)}/s (telemetry ${int(rowsRate)} rows/s)`],
    ['steady: backlog max / at the end', `${int(maxBacklog)} / ${int(steadyBacklog)} (bridge buffered at most ${int(maxBuffered)})`],
    ['steady CPU (% of one core)', `fleet ${pct(steadyCpu.fleet!)}, bridge ${pct(steadyCpu.bridge!)}, mosquitto ${pct(steadyCpu.mosquitto!)}, postgres ${pct(steadyCpu.postgres!)}, softirq ${pct(steadyCpu.softirq!)}, other ${pct(steadyCpu.other!)}`],
    ['RSS at steady state', `fleet ${mib(steadyRss.fleet)}, bridge ${mib(steadyRss.bridge)}, mosquitto ${mib(steadyRss.mosquitto)} (its heap ${mib(sys.heap)})`],
    ['RSS peak', `fleet ${mib(peakRss.fleet)}, bridge ${mib(peakRss.bridge)}, mosquitto ${mib(peakRss.mosquitto)}`],
    [`stop (${a.stop}): fleet stopped after`, fmt(tStopped, tStop)],
    ['… all offline in PostgreSQL after', fmt(tOffline, tStop)],
    ['bridge totals', `${int(end.received)} received, ${int(end.committed)} committed, ${int(end.dropped)} dropped, ${int(end.telemetryRows)} telemetry rows`],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  for (const [k, v] of lines) console.log(`  ${k.padEnd(w)}  ${v}`);

  const targets = new Targets();
  targets.add(`${int(n)} simultaneous connections`, tConnected !== null && endFleet.connectFailures === 0, `${fmt(tConnected)} to all connected, ${int(endFleet.connectFailures)} connect failures`);
  targets.add(
    `bridge marks all online within ${ONLINE_WITHIN_MS / 1000} s of the last connection`,
    tOnline !== null && tConnected !== null && tOnline - tConnected <= ONLINE_WITHIN_MS,
    tOnline !== null && tConnected !== null ? `${secs(tOnline - tConnected)}` : 'not all online',
  );
  // Keeping up = the backlog stays bounded: under 1 s of the rate at the end, under 2 s at any sample.
  targets.add(
    'bridge keeps up at the steady rate (backlog under 1 s of it at the end, under 2 s throughout)',
    steadyBacklog <= Math.max(publishedRate, 100) && maxBacklog <= Math.max(2 * publishedRate, 200),
    `committed ${int(storedRate)}/s of ${int(publishedRate)}/s published, backlog at most ${int(maxBacklog)}, ${int(steadyBacklog)} at the end`,
  );
  targets.add('all offline after the stop', tOffline !== null, fmt(tOffline, tStop));
  targets.print();
  return targets.exitCode(a.check);
}

runBench(main);
