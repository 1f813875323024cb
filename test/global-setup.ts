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
import { CredentialDeriver } from '../domain/credentials';
import { prepareMosquittoAuth } from '../broker/mosquitto-files';
import { platformLogins } from '../broker/stores';
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
  // A Mosquitto of the run's own, configured as the product's embedded one (per-device logins and
  // ACL, MQTT 5, TCP_NODELAY), with nothing retained from earlier runs. The machine's anonymous
  // broker when there is no binary; TEST_MQTT_URL to choose.
  const deviceSecretKey = 'test-device-secret-key-0123456789abcdef0123456789';
  const credentials = new CredentialDeriver(Buffer.from(deviceSecretKey));
  let brokerUrl = process.env.TEST_MQTT_URL;
  let brokerDir: string | null = null;
  let stopBroker = async () => undefined as void;
  if (!brokerUrl) {
    const bin = findMosquitto();
    if (bin) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-mosquitto-'));
      prepareMosquittoAuth(dir, platformLogins(credentials), { replace: true });
      const broker = await startMosquitto({ bin, port: await freePort(), dir, authDir: dir, persistent: false, log });
      brokerUrl = broker.url;
      brokerDir = dir;
      stopBroker = broker.stop;
    } else {
      brokerUrl = 'mqtt://127.0.0.1:1883';
    }
  }
  // Helper clients (watchers, simulated devices without logins of their own) connect as the tools client.
  const tools = new URL(brokerUrl);
  tools.username = 'rdm-tools';
  tools.password = credentials.platformPassword('rdm-tools');
  const workflowBundlePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-test-')), 'workflow-bundle.js');
  fs.writeFileSync(workflowBundlePath, bundle.code);

  const env: TestEnv = {
    databaseUrl,
    temporalAddress: temporal.address,
    mqttUrl: tools.toString(),
    brokerUrl,
    brokerDir,
    workflowBundlePath,
    deviceSecretKey,
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
