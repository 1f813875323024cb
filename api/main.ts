// The API process: `npm run api`. Configuration is read once; migrations run at start.
import { Client, Connection } from '@temporalio/client';
import { buildApp } from './app';
import { listen } from './http/server';
import { DeviceRequests } from './device-requests';
import { ensureBootstrapAdmin, ADMIN_TOKEN_FILE } from './bootstrap-admin';
import { createDb } from '../db/knex';
import { migrateWhenFree } from '../db/migrate';
import { loadConfigOrExit } from '../runtime/config';
import { loadCredentialDeriver } from '../runtime/device-key';
import { createLogger } from '../runtime/logger';
import { connectMqtt } from '../runtime/mqtt-client';
import { platformLogin } from '../broker/stores';
import { warnUnauthenticatedBroker } from '../broker/warn';
import { createDeviceAuthenticator } from '../broker/authenticator';
import { redactUrl, serviceAddresses } from '../runtime/services';
import { onShutdown, exitWith } from '../runtime/process';
import path from 'node:path';
import { loadFirmwareSigner } from '../ota/signing';
import { firmwareDeps } from './firmware-deps';

async function main() {
  const cfg = loadConfigOrExit();
  const log = createLogger(cfg.LOG_LEVEL, 'api');
  const addr = serviceAddresses(cfg);

  const db = createDb(addr.databaseUrl);
  try {
    await migrateWhenFree(db);
  } catch (err) {
    exitWith(log, `DATABASE_URL: cannot prepare the database at ${redactUrl(addr.databaseUrl)}: ${(err as Error).message}`);
  }
  const credentials = await loadCredentialDeriver(db, cfg).catch((err: Error) => exitWith(log, err.message));
  const signer = await loadFirmwareSigner(db, cfg).catch((err: Error) => exitWith(log, err.message));
  const created = await ensureBootstrapAdmin(db, cfg.DATA_DIR, cfg.ADMIN_TOKEN);
  if (created) {
    process.stdout.write(
      `\n  Platform admin token (shown once; also saved to ${path.join(cfg.DATA_DIR, ADMIN_TOKEN_FILE)}):\n\n    ${created}\n\n`,
    );
  }

  // Lazy: the API starts (and /readyz says why it is not ready) while Temporal is still coming up.
  const connection = Connection.lazy({ address: addr.temporalAddress });
  const temporal = new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
  const mqtt = connectMqtt(addr.mqttUrl, 'api', platformLogin(credentials, 'rdm-api'));
  if (cfg.MQTT_URL && cfg.MQTT_AUTH === 'none') warnUnauthenticatedBroker(log);

  const app = buildApp({
    db,
    temporal,
    taskQueue: cfg.TEMPORAL_TASK_QUEUE,
    credentials,
    log,
    adminToken: cfg.ADMIN_TOKEN,
    signup: cfg.SIGNUP,
    sessionTtlS: cfg.SESSION_TTL_S,
    pairingTimeoutS: cfg.PAIRING_TIMEOUT_S,
    devices: new DeviceRequests(mqtt),
    replyTimeoutMs: cfg.DEVICE_REPLY_TIMEOUT_MS,
    publicMqttUrl: cfg.MQTT_DEVICE_URL ?? addr.mqttUrl,
    firmware: firmwareDeps({ db, credentials, dir: path.join(cfg.DATA_DIR, 'firmware'), signer, maxBytes: cfg.FIRMWARE_MAX_BYTES }),
    readiness: [
      { name: 'postgres', check: async () => void (await db.raw('select 1')) },
      { name: 'temporal', check: async () => void (await connection.workflowService.getSystemInfo({})) },
      { name: 'mqtt', check: async () => { if (!mqtt.connected) throw new Error(`not connected to ${redactUrl(addr.mqttUrl)}`); } },
    ],
  }, {
    exports: { concurrency: cfg.EXPORT_CONCURRENCY, stallTimeoutMs: cfg.EXPORT_STALL_TIMEOUT_S * 1000 },
    ...(cfg.MQTT_HTTP_AUTH_SECRET ? { brokerAuth: { secret: cfg.MQTT_HTTP_AUTH_SECRET, authenticator: createDeviceAuthenticator({ db, credentials }) } } : {}),
  });

  const server = await listen(app, cfg.PORT, cfg.HOST, {
    headersTimeoutMs: cfg.HTTP_HEADERS_TIMEOUT_S * 1000,
    requestTimeoutMs: cfg.HTTP_REQUEST_TIMEOUT_S * 1000,
    keepAliveTimeoutMs: cfg.HTTP_KEEP_ALIVE_TIMEOUT_S * 1000,
  }).catch((err: Error) => exitWith(log, `PORT: cannot listen on ${cfg.HOST}:${cfg.PORT}: ${err.message}`));
  log.info({ url: `http://${cfg.HOST}:${cfg.PORT}` }, 'api listening');

  onShutdown(log, async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    mqtt.end(true);
    await connection.close();
    await db.destroy();
  });
}

main().catch((err: Error) => {
  process.stderr.write(`api failed to start: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
