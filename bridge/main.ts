// The bridge process: `tsx bridge/main.ts`. Reads every device's MQTT traffic (an MQTT 5 shared
// subscription: start N of them to split the load) and writes it to Postgres in batches.
//
// BRIDGE_ID names this instance (its MQTT client ID and broker session: keep it stable across
// restarts, distinct per instance); the host name by default, so two bridges on one host need it.
import { Client, Connection } from '@temporalio/client';
import { createDb } from '../db/knex';
import { migrateWhenFree } from '../db/migrate';
import { loadConfigOrExit } from '../runtime/config';
import { createLogger } from '../runtime/logger';
import { Registry } from '../runtime/metrics';
import { exitWith, onShutdown } from '../runtime/process';
import { redactUrl, serviceAddresses } from '../runtime/services';
import { startBridge } from './bridge';
import { defaultBridgeClientId } from './intake';
import { platformLogin } from '../broker/stores';
import { loadCredentialDeriver } from '../runtime/device-key';
import { temporalSignaller, SIGNAL_ROUTES } from './workflow-events';

async function main() {
  const cfg = loadConfigOrExit();
  const log = createLogger(cfg.LOG_LEVEL, 'bridge');
  const addr = serviceAddresses(cfg);

  // The schema is the API's and the worker's too: whoever starts first migrates, the others wait.
  const db = createDb(addr.databaseUrl, { min: 0, max: 1 });
  try {
    await migrateWhenFree(db);
  } catch (err) {
    exitWith(log, `DATABASE_URL: cannot prepare the database at ${redactUrl(addr.databaseUrl)}: ${(err as Error).message}`);
  }
  const credentials = await loadCredentialDeriver(db, cfg).catch((err: Error) => exitWith(log, err.message));
  await db.destroy();
  const login = platformLogin(credentials, 'rdm-bridge');

  // Temporal only carries the few device events a workflow waits for: connect lazily, and only
  // when some route needs it.
  const connection = SIGNAL_ROUTES.length > 0 ? Connection.lazy({ address: addr.temporalAddress }) : null;
  const signaller = connection ? temporalSignaller(new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE })) : undefined;

  const bridge = await startBridge({
    databaseUrl: addr.databaseUrl,
    mqttUrl: addr.mqttUrl,
    mqttUsername: login.username,
    mqttPassword: login.password,
    group: credentials.shareGroup(cfg.BRIDGE_SHARE_GROUP),
    clientId: defaultBridgeClientId(cfg.BRIDGE_ID),
    sessionExpirySeconds: cfg.BRIDGE_SESSION_EXPIRY_S,
    batchRows: cfg.BRIDGE_BATCH_ROWS,
    flushMs: cfg.BRIDGE_FLUSH_MS,
    maxBuffered: cfg.BRIDGE_MAX_BUFFERED,
    maxNodesPerDevice: cfg.BRIDGE_MAX_NODES_PER_DEVICE,
    maxPropertiesPerNode: cfg.BRIDGE_MAX_PROPERTIES_PER_NODE,
    maxAttributesPerDevice: cfg.BRIDGE_MAX_ATTRIBUTES_PER_DEVICE,
    logRetention: { days: cfg.LOG_RETENTION_DAYS, perDevice: cfg.LOG_RETENTION_PER_DEVICE },
    logger: log,
    metrics: new Registry(),
    // 0 turns the metrics server off.
    metricsPort: cfg.BRIDGE_METRICS_PORT === 0 ? undefined : cfg.BRIDGE_METRICS_PORT,
    metricsHost: cfg.HOST,
    signaller,
  }).catch((err: Error) => exitWith(log, `the bridge cannot start (MQTT_URL ${redactUrl(addr.mqttUrl)}, BRIDGE_METRICS_PORT ${cfg.BRIDGE_METRICS_PORT}): ${err.message}`));

  onShutdown(log, async () => {
    await bridge.stop();
    await connection?.close();
  });
}

main().catch((err: Error) => {
  process.stderr.write(`bridge failed to start: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
