// Pairing figures: from the request (requestPairing, what POST /pairings calls) to `paired` (the
// pairing workflow done: the device confirmed, its lifecycle moved, the owner recorded and told),
// with reference-firmware devices that confirm at once; one at a time, then 1,000 at once. Beside
// them, in the same run and on the same server, the bare path: update-with-start of a workflow
// whose update answers at once, as many in flight.
//
//   npx tsx scripts/bench/pairing.ts [--count 1000] [--sequential 100] [--check]
//
// Everything is the product's own code: the worker (in this process), the bridge (a child process,
// routing the devices' answers as signals), a Temporal dev server with a SQLite file (as `npm start`
// runs it), a Mosquitto of the run's own with set_tcp_nodelay, a scratch PostgreSQL database, and
// the devices in a child process of their own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { mapConcurrent } from '../../activities/concurrency';
import { CredentialDeriver } from '../../domain/credentials';
import { deviceTaskQueue, pairingWorkflowId } from '../../domain/messages';
import { Device } from '../../firmware/device';
import { generateCredentials, type FleetCredential } from '../../firmware/fleet';
import { mqttPublisher } from '../../runtime/device-publisher';
import { noCredentialStore } from '../../broker/credential-store';
import { freePort } from '../../runtime/embedded/free-port';
import { startTemporalDevServer } from '../../runtime/embedded/temporal-dev-server';
import { createLogger } from '../../runtime/logger';
import { connectMqtt } from '../../runtime/mqtt-client';
import { startDeviceLifecycle } from '../../temporal/device-workflows';
import { requestPairing, type PairingContext } from '../../temporal/pairing-workflows';
import { createWorker } from '../../worker/create-worker';
import { newEntityId } from '../../domain/ids';
import { createDb } from '../../db/knex';
import { ROOT, Targets, awaitQuiet, forkDevices, machineLine, ownMosquitto, percentile, runBench, scratchDatabase, secs, sleep, startBridgeProcess, table, type Cleanup } from './support';
import { ask } from './workflows/bare-pairing';

const TARGET_P99_MS = 1_000;
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');

interface Line {
  name: string;
  /** Request → answer (pending), and request → done (paired). */
  answered: number[];
  done: number[];
  failed: number;
  elapsedMs: number;
}

function row(l: Line): string[] {
  const a = [...l.answered].sort((x, y) => x - y);
  const d = [...l.done].sort((x, y) => x - y);
  return [l.name, String(d.length), String(l.failed), ms(percentile(a, 50)), ms(percentile(a, 99)), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(d[d.length - 1] ?? NaN), secs(l.elapsedMs), ((d.length / l.elapsedMs) * 1000).toFixed(1)];
}

/** Devices in a process of their own, answering every pairing request at once (the button pressed). */
function devicesChild(): void {
  let devices: Device[] = [];
  process.once('message', (m: { mqttUrl: string; creds: FleetCredential[] }) => {
    devices = m.creds.map((c) => new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: m.mqttUrl, model: 'thermostat', publishIntervalMs: 600_000, announce: 'values-only', pairing: 'accept' }));
    for (const d of devices) d.start();
    void Promise.all(devices.map((d) => d.waitConnected(120_000))).then(
      () => process.send!({ ready: true }),
      (err: Error) => process.send!({ error: err.message }),
    );
  });
  process.on('disconnect', () => {
    void Promise.all(devices.map((d) => d.stop())).finally(() => process.exit(0));
  });
}

const startDevices = (cleanup: Cleanup, mqttUrl: string, creds: FleetCredential[]) => forkDevices(cleanup, __filename, mqttUrl, creds);

async function main(cleanup: Cleanup): Promise<number> {
  const { values: a } = parseArgs({
    options: { count: { type: 'string', default: '1000' }, sequential: { type: 'string', default: '100' }, check: { type: 'boolean', default: false } },
    strict: true,
  });
  const count = Number(a.count);
  const sequential = Number(a.sequential);
  if (![count, sequential].every((v) => Number.isInteger(v) && v > 0)) throw new Error('--count, --sequential: positive integers');
  Runtime.install({ logger: new DefaultLogger('ERROR') });

  console.log(`machine: ${await machineLine()}`);
  console.log(`pairing: ${sequential} one at a time, then ${count} at once, each on its own free device that confirms at once; bare update-with-start, ${count} at once, on the same server`);

  const { url: databaseUrl, db } = await scratchDatabase(cleanup, 'pairing');
  // Pools as the processes have them: the API's (default 10; the code checks run there) and the worker's (20).
  const apiDb = createDb(databaseUrl);
  cleanup.add('close the API pool', () => apiDb.destroy());
  const workerDb = createDb(databaseUrl, { min: 0, max: 20 });
  cleanup.add('close the worker pool', () => workerDb.destroy());
  const broker = await ownMosquitto(cleanup);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-pairing-'));
  cleanup.add('remove the Temporal data', () => fs.rmSync(dir, { recursive: true, force: true }));
  const server = await startTemporalDevServer({ root: ROOT, dataDir: dir, port: await freePort(), uiPort: await freePort(), namespace: 'default', ui: false, log: createLogger('silent', 'bench') });
  cleanup.add('stop Temporal', () => server.stop());
  const connection = await Connection.connect({ address: server.address });
  cleanup.add('close the client', () => connection.close());
  const temporal = new Client({ connection });
  const native = await NativeConnection.connect({ address: server.address });
  cleanup.add('close the worker connection', () => native.close());
  const credentials = new CredentialDeriver(Buffer.from('bench-key-0123456789abcdef0123456789abcdef'));
  const taskQueue = 'bench';

  // Devices: rows `free` with their real pairing-code hashes, and their lifecycle workflows.
  const total = count + sequential;
  const creds = generateCredentials(total);
  const batchId = newEntityId();
  await db('batches').insert({ id: batchId, name: 'bench pairing', count: total, provisioning_status: 'ready', devices_created: total, workflows_started: total });
  await db.batchInsert('devices', creds.map((c, seq) => ({ id: c.deviceId, batch_id: batchId, seq, status: 'free', secret_hash: 'bench', pairing_code_hash: credentials.device(c.deviceId).pairingCodeHash })), 1000);
  await mapConcurrent(creds, 32, (c) => startDeviceLifecycle(temporal, deviceTaskQueue(taskQueue), { deviceId: c.deviceId, batchId, companyId: null, model: null, state: { status: 'free', blocked: false, version: 0 } }).then(() => undefined));

  const mqtt = connectMqtt(broker.url, 'worker');
  cleanup.add('close the worker MQTT client', () => mqtt.endAsync(true));
  await new Promise<void>((resolve) => mqtt.once('connect', () => resolve()));
  // Pairing alone: the bench's broker is anonymous, no logins to mirror.
  const worker = await createWorker({ connection: native, namespace: 'default', taskQueue, db: workerDb, temporal, credentials, broker: noCredentialStore, publisher: mqttPublisher(mqtt) });
  const running = worker.run();
  cleanup.add('stop the worker', async () => (worker.shutdown(), await running));
  const bareWorker = await Worker.create({ connection: native, namespace: 'default', taskQueue: 'bench-bare', workflowsPath: path.join(__dirname, 'workflows', 'bare-pairing.ts') });
  const bareRunning = bareWorker.run();
  cleanup.add('stop the bare worker', async () => (bareWorker.shutdown(), await bareRunning));

  process.env.TEMPORAL_ADDRESS = server.address; // the bridge signals the devices' answers
  await startBridgeProcess(cleanup, { databaseUrl, mqttUrl: broker.url });
  await startDevices(cleanup, broker.url, creds);
  await sleep(1_000); // every device subscribed and announced
  await awaitQuiet();

  const ctx: PairingContext = { temporal, db: apiDb, taskQueue, timeoutS: 120 };
  const pairOne = async (c: FleetCredential, i: number, l: Line) => {
    const t0 = performance.now();
    try {
      await requestPairing(ctx, { deviceId: c.deviceId, code: credentials.device(c.deviceId).pairingCode, userId: `U-BENCH-${i}` });
      l.answered.push(performance.now() - t0);
      const end = (await temporal.workflow.getHandle(pairingWorkflowId(c.deviceId)).result()) as { status: string };
      if (end.status !== 'paired') throw new Error(`ended ${end.status}`);
      l.done.push(performance.now() - t0);
    } catch (err) {
      if (l.failed++ === 0) console.error(`a pairing failed: ${(err as Error).message}`);
    }
  };
  const run = async (name: string, list: FleetCredential[], inFlight: number): Promise<Line> => {
    const l: Line = { name, answered: [], done: [], failed: 0, elapsedMs: 0 };
    const t0 = performance.now();
    await mapConcurrent(list.map((c, i) => ({ c, i })), inFlight, ({ c, i }) => pairOne(c, i, l));
    l.elapsedMs = performance.now() - t0;
    return l;
  };

  const lines: Line[] = [];
  lines.push(await run('pairing, one at a time', creds.slice(0, sequential), 1));
  lines.push(await run(`pairing, ${count} at once`, creds.slice(sequential), count));

  const bare: Line = { name: `bare update-with-start, ${count} at once`, answered: [], done: [], failed: 0, elapsedMs: 0 };
  const b0 = performance.now();
  await mapConcurrent(Array.from({ length: count }, (_, i) => i), count, async (i) => {
    const t0 = performance.now();
    try {
      await temporal.workflow.executeUpdateWithStart(ask, {
        args: [`U-${i}`],
        startWorkflowOperation: new WithStartWorkflowOperation('benchBarePairing', { workflowId: `bare-${i}`, taskQueue: 'bench-bare', workflowIdConflictPolicy: 'USE_EXISTING' }),
      });
      bare.answered.push(performance.now() - t0);
      await temporal.workflow.getHandle(`bare-${i}`).result();
      bare.done.push(performance.now() - t0);
    } catch (err) {
      if (bare.failed++ === 0) console.error(`a bare update-with-start failed: ${(err as Error).message}`);
    }
  });
  bare.elapsedMs = performance.now() - b0;
  lines.push(bare);

  console.log('\n(ms; "answered": the request\'s answer, pending; "done": paired, or the bare workflow closed)');
  console.log(table(['line', 'done', 'failed', 'answered p50', 'answered p99', 'done p50', 'done p99', 'max', 'wall', 'per s'], lines.map(row)));
  const concurrent = lines[1]!;
  const ratio = (concurrent.done.length / concurrent.elapsedMs) / (bare.done.length / bare.elapsedMs);
  console.log(`ratio: ${count} pairings at once per s / bare update-with-starts per s = ${ratio.toFixed(3)}`);
  const paired = Number((await db('devices').where({ batch_id: batchId, status: 'paired' }).whereNotNull('owner_id').count<{ n: string }[]>('* as n'))[0]!.n);
  console.log(`devices paired with an owner in Postgres: ${paired} of ${total}`);

  const targets = new Targets();
  const p99 = percentile([...concurrent.done].sort((x, y) => x - y), 99);
  targets.add(`${count} at once: all done`, concurrent.done.length === count && paired === total, `${concurrent.done.length} done, ${concurrent.failed} failed`);
  targets.add(`${count} at once: p99 request → paired ≤ ${TARGET_P99_MS} ms`, p99 <= TARGET_P99_MS, `${ms(p99)} ms`);
  targets.print();
  return targets.exitCode(a.check);
}

if (process.argv.includes('--role')) devicesChild();
else runBench(main);
