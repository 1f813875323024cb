// `npm start`: the whole product in one command. Uses DATABASE_URL, MQTT_URL and
// TEMPORAL_ADDRESS when set; otherwise starts what is missing (embedded PostgreSQL with its data
// in DATA_DIR, an MQTT broker, a Temporal dev server whose SQLite file is in DATA_DIR), then runs
// the api, the worker and the bridge under a supervisor. Ctrl-C stops everything cleanly.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigOrExit } from '../runtime/config';
import { createLogger } from '../runtime/logger';
import { embeddedBrokerDir, redactUrl, serviceAddresses } from '../runtime/services';
import { createDb } from '../db/knex';
import { migrateWhenFree } from '../db/migrate';
import { loadCredentialDeriver } from '../runtime/device-key';
import { rebuildMosquittoAuth } from '../broker/rebuild';
import { createDeviceAuthenticator, aedesAuthHooks } from '../broker/authenticator';
import { warnUnauthenticatedBroker } from '../broker/warn';
import { Supervisor } from '../runtime/supervisor';
import { startEmbeddedPostgres } from '../runtime/embedded/postgres';
import { startEmbeddedBroker } from '../runtime/embedded/mqtt-broker';
import { findMosquitto, startMosquitto } from '../runtime/embedded/mosquitto';
import { startTemporalDevServer } from '../runtime/embedded/temporal-dev-server';
import { ADMIN_TOKEN_FILE } from '../api/bootstrap-admin';
import { acquirePidLock } from '../runtime/pid-lock';

const ROOT = path.resolve(__dirname, '..');

async function waitForReady(url: string, timeoutMs = 120_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

async function main() {
  const cfg = loadConfigOrExit();
  const log = createLogger(cfg.LOG_LEVEL, 'start');
  fs.mkdirSync(cfg.DATA_DIR, { recursive: true });
  acquirePidLock(path.join(cfg.DATA_DIR, 'rdm.pid'));

  const stops: (() => Promise<void>)[] = [];
  const addr = serviceAddresses(cfg);
  let temporalUi: string | null = null;

  if (!cfg.DATABASE_URL) {
    log.info('starting embedded PostgreSQL');
    const pg = await startEmbeddedPostgres({ dataDir: cfg.DATA_DIR, port: cfg.EMBEDDED_POSTGRES_PORT, log });
    addr.databaseUrl = pg.url;
    stops.unshift(pg.stop);
  }
  // With an embedded broker the children find its address (MQTT_PORT) and, for Mosquitto, its
  // files (DATA_DIR/mosquitto) from the configuration; EMBEDDED_BROKER says which one runs.
  const mqttEnv: Record<string, string> = {};
  if (!cfg.MQTT_URL) {
    // The broker's logins come from Postgres, so it starts after it (and after the migrations).
    const db = createDb(addr.databaseUrl, { min: 0, max: 2 });
    stops.unshift(() => db.destroy());
    await migrateWhenFree(db);
    const credentials = await loadCredentialDeriver(db, cfg);
    const bin = findMosquitto();
    if (bin) {
      const dir = embeddedBrokerDir(cfg);
      const { devices } = await rebuildMosquittoAuth(db, credentials, dir);
      log.info({ bin, devices }, 'starting Mosquitto as the embedded MQTT broker (per-device authentication)');
      const broker = await startMosquitto({ bin, port: cfg.MQTT_PORT, dir, authDir: dir, persistent: true, log });
      addr.mqttUrl = broker.url;
      stops.unshift(broker.stop);
    } else {
      // No MQTT 5 here: the bridge falls back to one plain subscription (one bridge only). Its
      // hooks ask Postgres, so the other processes have nothing to mirror (as with MQTT_AUTH=http).
      log.info('starting the embedded MQTT broker (aedes with per-device authentication; install mosquitto for MQTT 5)');
      const auth = createDeviceAuthenticator({ db, credentials });
      const broker = await startEmbeddedBroker({ port: cfg.MQTT_PORT, log, auth: aedesAuthHooks(auth) });
      addr.mqttUrl = broker.url;
      mqttEnv.EMBEDDED_BROKER = 'aedes';
      stops.unshift(broker.stop);
    }
  } else if (cfg.MQTT_AUTH === 'none') {
    warnUnauthenticatedBroker(log);
  }
  if (!cfg.TEMPORAL_ADDRESS) {
    log.info('starting the Temporal dev server');
    const t = await startTemporalDevServer({ root: ROOT, dataDir: cfg.DATA_DIR, port: cfg.TEMPORAL_PORT, uiPort: cfg.TEMPORAL_UI_PORT, namespace: cfg.TEMPORAL_NAMESPACE, log });
    addr.temporalAddress = t.address;
    temporalUi = t.uiUrl;
    stops.unshift(t.stop);
  }

  const env = { ...process.env, DATABASE_URL: addr.databaseUrl, ...mqttEnv, TEMPORAL_ADDRESS: addr.temporalAddress, DATA_DIR: cfg.DATA_DIR };
  const supervisor = new Supervisor(log);
  supervisor.start({ name: 'worker', entry: 'worker/main.ts', env });
  supervisor.start({ name: 'api', entry: 'api/main.ts', env });
  supervisor.start({ name: 'bridge', entry: 'bridge/main.ts', env });

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info('stopping');
    await supervisor.stop();
    for (const stop of stops) await stop().catch((err: Error) => log.warn({ err }, 'a service did not stop cleanly'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());

  const apiUrl = `http://${cfg.HOST === '0.0.0.0' ? '127.0.0.1' : cfg.HOST}:${cfg.PORT}`;
  if (await waitForReady(`${apiUrl}/readyz`)) {
    const tokenFile = path.join(cfg.DATA_DIR, ADMIN_TOKEN_FILE);
    const token = cfg.ADMIN_TOKEN ? 'ADMIN_TOKEN (from the environment)' : fs.existsSync(tokenFile) ? tokenFile : 'printed once at the first start';
    process.stdout.write(
      [
        '',
        '  Remote device management is up.',
        `    API            ${apiUrl}/api/v1   (OpenAPI: ${apiUrl}/api/v1/openapi.json)`,
        `    Temporal UI    ${temporalUi ?? `(external Temporal at ${addr.temporalAddress})`}`,
        `    Admin token    ${token}`,
        `    PostgreSQL     ${redactUrl(addr.databaseUrl)}`,
        `    MQTT           ${addr.mqttUrl}`,
        `    Data           ${cfg.DATA_DIR}`,
        '  Ctrl-C stops everything.',
        '',
      ].join('\n') + '\n',
    );
  } else {
    log.error(`the API did not become ready at ${apiUrl}/readyz; see the logs above`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`npm start failed: ${err.message}\n`);
  process.exit(1);
});
