// Provisioning figures: a COUNT-device batch (default 10,000) through the real API, worker,
// PostgreSQL and a Temporal dev server with a SQLite file (as `npm start` runs it).
//   npx tsx scripts/bench/provisioning.ts [count]
// First, the bare path on the same server: a plain client starting COUNT idle workflows, then
// sending each an update, with as many calls in flight as the product uses, so that the
// product's start rate and its bulk status change read as ratios to it.
// PostgreSQL: BENCH_PG_ADMIN_URL (default the machine's postgres://postgres@127.0.0.1:5432/postgres);
// a scratch database is created and dropped.
import { mosquittoFilesStore, prepareMosquittoAuth } from '../../broker/mosquitto-files';
import { platformLogin, platformLogins } from '../../broker/stores';
import { findMosquitto, startMosquitto } from '../../runtime/embedded/mosquitto';
import fs from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import knexFactory from 'knex';
import { buildApp } from '../../api/app';
import { ephemeralSigner, firmwareDeps } from '../../api/firmware-deps';
import { DeviceRequests } from '../../api/device-requests';
import { mqttPublisher } from '../../runtime/device-publisher';
import { connectMqtt } from '../../runtime/mqtt-client';
import os from 'node:os';
import { ensureBootstrapAdmin } from '../../api/bootstrap-admin';
import { insertCompany } from '../../db/repositories/companies';
import { newEntityId } from '../../domain/ids';
import { CredentialDeriver, newApiToken } from '../../domain/credentials';
import { createDb, migrateLatest } from '../../db/knex';
import { freePort } from '../../runtime/embedded/free-port';
import { startTemporalDevServer } from '../../runtime/embedded/temporal-dev-server';
import { createLogger } from '../../runtime/logger';
import { START_CHUNK, START_PARALLELISM } from '../../workflows/batch-provisioning';
import { mapConcurrent } from '../../activities/concurrency';
import { START_CONCURRENCY } from '../../activities/provisioning';
import { UPDATE_CONCURRENCY } from '../../activities/bulk-status';
import { createWorker } from '../../worker/create-worker';

const COUNT = Number(process.argv[2] ?? 10_000);
const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = path.resolve(__dirname, '..', '..');

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const log = createLogger('silent', 'bench');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-'));
  const dbName = `rdm_bench_${Date.now()}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL });
  await admin.raw(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const db = createDb(url.toString(), { min: 0, max: 20 });
  await migrateLatest(db);
  const temporalServer = await startTemporalDevServer({ root, dataDir: dir, port: await freePort(), uiPort: await freePort(), namespace: 'default', ui: false, log });
  const connection = await Connection.connect({ address: temporalServer.address });
  const temporal = new Client({ connection });
  const native = await NativeConnection.connect({ address: temporalServer.address });
  const credentials = new CredentialDeriver(Buffer.from('bench-key-0123456789abcdef0123456789abcdef'));
  const taskQueue = 'bench';

  // The bare path: the same number of starts in flight, a worker that runs each first task.
  // BENCH_SKIP_BARE=1 leaves it out (the batch's own figures only; no ratios).
  const inFlight = START_CONCURRENCY * START_PARALLELISM;
  let tRaw = Number.NaN;
  let tRawUpdates = Number.NaN;
  if (!process.env.BENCH_SKIP_BARE) {
    const idleWorker = await Worker.create({ connection: native, namespace: 'default', taskQueue: 'bench-idle', workflowsPath: path.join(__dirname, 'workflows', 'idle.ts') });
    const idleRunning = idleWorker.run();
    const r0 = performance.now();
    await mapConcurrent(Array.from({ length: COUNT }, (_, i) => i), inFlight, (i) =>
      temporal.workflow.start('benchIdle', { workflowId: `idle-${i}`, taskQueue: 'bench-idle' }).then(() => undefined));
    tRaw = performance.now() - r0;
    const u0 = performance.now();
    await mapConcurrent(Array.from({ length: COUNT }, (_, i) => i), UPDATE_CONCURRENCY, (i) =>
      temporal.workflow.getHandle(`idle-${i}`).executeUpdate('poke', { args: [1] }).then(() => undefined));
    tRawUpdates = performance.now() - u0;
    idleWorker.shutdown();
    await idleRunning;
  }
  // The product's own broker, as `npm start` runs it: Mosquitto with per-device logins in a
  // password file, which the batch workflow fills beside its workflow starts (docs/broker.md).
  const brokerDir = path.join(dir, 'mosquitto');
  prepareMosquittoAuth(brokerDir, platformLogins(credentials), { replace: true });
  const broker = await startMosquitto({ bin: findMosquitto() ?? 'mosquitto', port: await freePort(), dir: brokerDir, authDir: brokerDir, persistent: false, log });
  const store = mosquittoFilesStore({ dir: brokerDir, url: broker.url });
  const mqtt = connectMqtt(broker.url, 'bench', platformLogin(credentials, 'rdm-api'));
  const worker = await createWorker({ connection: native, namespace: 'default', taskQueue, db, temporal, credentials, broker: store, publisher: mqttPublisher(mqtt) });
  const running = worker.run();
  const adminToken = newApiToken();
  await ensureBootstrapAdmin(db, os.tmpdir(), adminToken); // ADMIN_TOKEN acts as the platform admin
  const company = await insertCompany(db, { id: newEntityId(), name: 'bench', createdBy: 'bench' });
  const app = buildApp({ db, temporal, taskQueue, credentials, log, adminToken, devices: new DeviceRequests(mqtt), readiness: [], firmware: firmwareDeps({ db, credentials, dir: path.join(os.tmpdir(), 'rdm-bench-firmware'), signer: ephemeralSigner() }) });
  const server: Server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1`;
  const auth = { authorization: `Bearer ${adminToken}` };

  const t0 = performance.now();
  const res = await fetch(`${base}/batches`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ companyId: company.id, name: 'bench', count: COUNT }) });
  const { id } = (await res.json()) as { id: string };
  const t201 = performance.now() - t0;
  let tCsv = 0;
  let tAll = 0;
  let tCreds = 0;
  for (;;) {
    if (!tCreds && tCsv) {
      // Every login in the broker's password file (the batch's credential sync beside its starts).
      const [{ n }] = (await db('devices').where({ batch_id: id }).whereNull('broker_generation').count({ n: '*' })) as [{ n: string }];
      if (Number(n) === 0) {
        tCreds = performance.now() - t0;
        console.log(`  (so far) every login in the broker ${(tCreds / 1000).toFixed(2)} s`);
      }
    }
    const b = (await (await fetch(`${base}/batches/${id}`, { headers: auth })).json()) as { provisioning: { devicesReadyAt: string | null; readyAt: string | null } };
    if (!tCsv && b.provisioning.devicesReadyAt) {
      const csv = await fetch(`${base}/batches/${id}/devices.csv`, { headers: auth });
      await csv.arrayBuffer();
      tCsv = performance.now() - t0;
      console.log(`  (so far) CSV downloadable (+fetched) ${(tCsv / 1000).toFixed(2)} s`);
    }
    if (b.provisioning.readyAt && !tAll) tAll = performance.now() - t0;
    if (tAll && tCreds) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const running_ = await temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${id}" AND ExecutionStatus = "Running"`);

  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  const z0 = performance.now();
  const zip = await fetch(`${base}/batches/${id}/bundle.zip`, { headers: auth });
  let bytes = 0;
  for await (const chunk of zip.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
  const tZip = performance.now() - z0;
  clearInterval(sampler);

  // A bulk status change of the whole batch: one update per device workflow, each recorded in Postgres.
  const b0 = performance.now();
  const bulk = await fetch(`${base}/batches/${id}/status`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ status: 'manufacturing' }) });
  const opUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}${bulk.headers.get('location')}`;
  let op: { state: string; changed: number };
  for (;;) {
    op = (await (await fetch(opUrl, { headers: auth })).json()) as typeof op;
    if (op.state === 'completed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tBulk = performance.now() - b0;

  const cpu = os.cpus();
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`machine: ${cpu[0]?.model} x${cpu.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  console.log(`batch of ${COUNT} devices (Temporal dev server, SQLite WAL; worker and API in this process)`);
  console.log(`  201 Created                 ${s(t201)}`);
  console.log(`  CSV downloadable (+fetched) ${s(tCsv)}`);
  console.log(`  every login in the broker   ${s(tCreds)}   (Mosquitto password file, reloaded per 2,000)`);
  const rate = (ms: number) => COUNT / (ms / 1000);
  console.log(`  bare client: ${COUNT} idle workflows started ${s(tRaw)}   (${rate(tRaw).toFixed(0)} starts/s, ${inFlight} in flight)`);
  console.log(`  all lifecycle workflows     ${s(tAll)}   (${running_.count} running; ${rate(tAll).toFixed(0)} starts/s; ratio to the bare client ${(rate(tAll) / rate(tRaw)).toFixed(2)}; ${inFlight} in flight in ${START_CHUNK}-device chunks)`);
  console.log(`  bare client: ${COUNT} updates (no activity)  ${s(tRawUpdates)}   (${rate(tRawUpdates).toFixed(0)} updates/s, ${UPDATE_CONCURRENCY} in flight)`);
  console.log(`  bulk status, whole batch   ${s(tBulk)}   (${op.changed} changed; ${rate(tBulk).toFixed(0)} devices/s; ratio to the bare client ${(rate(tBulk) / rate(tRawUpdates)).toFixed(2)})`);
  console.log(`  bundle.zip streamed         ${s(tZip)}   (${(bytes / 2 ** 20).toFixed(1)} MiB; RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB)`);

  server.close();
  mqtt.end(true);
  await store.close();
  await broker.stop();
  worker.shutdown();
  await running;
  await native.close();
  await connection.close();
  await temporalServer.stop();
  await db.destroy();
  await admin.raw(`DROP DATABASE ${dbName} WITH (FORCE)`);
  await admin.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
