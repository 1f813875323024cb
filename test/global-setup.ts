// Once per test run: a real Temporal dev server (in memory), a fresh Postgres database on the
// machine's server with the migrations applied, and the workflow bundle built once for all files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import knexFactory from 'knex';
import { createDb, migrateLatest } from '../db/knex';
import { freePort } from '../runtime/embedded/free-port';
import { startTemporalDevServer } from '../runtime/embedded/temporal-dev-server';
import { findMosquitto, startMosquitto } from '../runtime/embedded/mosquitto';
import { createLogger } from '../runtime/logger';
import { WORKFLOWS_PATH } from '../worker/create-worker';
import { TEST_ENV_VAR, type TestEnv } from './support/env';

const root = path.resolve(__dirname, '..');
/** The machine's Postgres (trust auth); TEST_PG_ADMIN_URL points the tests elsewhere. */
const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function globalSetup(): Promise<void> {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', 'test-setup');
  const dbName = `rdm_test_${Date.now()}_${process.pid}`;
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN_URL });
  await admin.raw(`CREATE DATABASE ${dbName}`);
  await admin.destroy();
  const adminUrl = new URL(PG_ADMIN_URL);
  adminUrl.pathname = `/${dbName}`;
  const databaseUrl = adminUrl.toString();
  const db = createDb(databaseUrl);
  await migrateLatest(db);
  await db.destroy();

  const [temporal, bundle] = await Promise.all([
    startTemporalDevServer({ root, dataDir: null, port: await freePort(), uiPort: await freePort(), namespace: 'default', ui: false, log }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
  ]);
  // A Mosquitto of the run's own (MQTT 5, TCP_NODELAY, nothing retained from earlier runs); the
  // machine's broker when there is no binary; TEST_MQTT_URL to choose.
  let mqttUrl = process.env.TEST_MQTT_URL;
  let stopBroker = async () => undefined as void;
  if (!mqttUrl) {
    const bin = findMosquitto();
    if (bin) {
      const broker = await startMosquitto({ bin, port: await freePort(), dir: fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-mosquitto-')), persistent: false, log });
      mqttUrl = broker.url;
      stopBroker = broker.stop;
    } else {
      mqttUrl = 'mqtt://127.0.0.1:1883';
    }
  }
  const workflowBundlePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-test-')), 'workflow-bundle.js');
  fs.writeFileSync(workflowBundlePath, bundle.code);

  const env: TestEnv = {
    databaseUrl,
    temporalAddress: temporal.address,
    mqttUrl,
    workflowBundlePath,
    deviceSecretKey: 'test-device-secret-key-0123456789abcdef0123456789',
  };
  process.env[TEST_ENV_VAR] = JSON.stringify(env);
  (globalThis as Record<string, unknown>).__RDM_TEARDOWN__ = async () => {
    await temporal.stop();
    await stopBroker();
    const a = knexFactory({ client: 'pg', connection: PG_ADMIN_URL });
    await a.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await a.destroy();
    fs.rmSync(path.dirname(workflowBundlePath), { recursive: true, force: true });
  };
}
