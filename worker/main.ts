// The worker process: `npm run worker`. Runs every workflow and activity on the task queue;
// start N of them to scale out.
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from './create-worker';
import { credentialStoreFor, platformLogin, platformLogins } from '../broker/stores';
import { createDb } from '../db/knex';
import { migrateWhenFree } from '../db/migrate';
import { loadConfigOrExit } from '../runtime/config';
import { loadCredentialDeriver } from '../runtime/device-key';
import { ensureSearchAttributes } from '../runtime/embedded/temporal-dev-server';
import { mqttPublisher } from '../runtime/device-publisher';
import { createLogger } from '../runtime/logger';
import { connectMqtt } from '../runtime/mqtt-client';
import { exitWith } from '../runtime/process';
import { redactUrl, serviceAddresses } from '../runtime/services';

async function connectWithRetry(address: string, log: ReturnType<typeof createLogger>): Promise<NativeConnection> {
  const until = Date.now() + 60_000;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await NativeConnection.connect({ address });
    } catch (err) {
      if (Date.now() > until) exitWith(log, `TEMPORAL_ADDRESS: no Temporal server answers at ${address}: ${(err as Error).message}`);
      log.warn({ address }, 'waiting for Temporal');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function main() {
  const cfg = loadConfigOrExit();
  const log = createLogger(cfg.LOG_LEVEL, 'worker');
  // On SIGTERM/SIGINT: no new tasks, in-flight activities get this long, then are cancelled and the
  // worker exits 15 s later at the latest. (SIGKILL loses in-flight attempts; Temporal retries them.)
  const graceMs = cfg.WORKER_SHUTDOWN_GRACE_MS;
  const addr = serviceAddresses(cfg);

  const db = createDb(addr.databaseUrl, { min: 0, max: 20 });
  try {
    await migrateWhenFree(db);
  } catch (err) {
    exitWith(log, `DATABASE_URL: cannot prepare the database at ${redactUrl(addr.databaseUrl)}: ${(err as Error).message}`);
  }
  const credentials = await loadCredentialDeriver(db, cfg).catch((err: Error) => exitWith(log, err.message));

  const broker = credentialStoreFor(cfg, addr.mqttUrl);
  if (broker.prepare) {
    // The api and the bridge wait (reconnecting) until their logins are there.
    await broker.prepare(platformLogins(credentials)).catch((err: Error) => exitWith(log, `MQTT_AUTH=${cfg.MQTT_AUTH}: cannot prepare the broker at ${redactUrl(addr.mqttUrl)}: ${err.message}`));
    log.info({ store: broker.kind }, 'the broker has the platform clients\' logins');
  }
  const connection = await connectWithRetry(addr.temporalAddress, log);
  // A cluster may deny the operator API to this worker: then the attributes are its admins' job.
  await ensureSearchAttributes(connection, cfg.TEMPORAL_NAMESPACE).catch((err: Error) =>
    log.warn({ err: err.message }, 'could not register the custom search attributes; register them with `temporal operator search-attribute create`'),
  );
  const temporal = new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
  // The worker's own MQTT client (pairing requests, owners); mqtt.js reconnects by itself and an
  // activity that cannot publish fails and is retried.
  const mqtt = connectMqtt(addr.mqttUrl, 'worker', platformLogin(credentials, 'rdm-worker'));
  const worker = await createWorker({
    connection,
    namespace: cfg.TEMPORAL_NAMESPACE,
    taskQueue: cfg.TEMPORAL_TASK_QUEUE,
    db,
    temporal,
    credentials,
    broker,
    publisher: mqttPublisher(mqtt),
    firmwareBaseUrl: cfg.PUBLIC_URL ?? `http://${cfg.HOST === '0.0.0.0' ? '127.0.0.1' : cfg.HOST}:${cfg.PORT}`,
    downloadUrlTtlS: cfg.FIRMWARE_URL_TTL_S,
    shutdownGraceTime: graceMs,
    shutdownForceTime: graceMs + 15_000,
  });
  log.info({ taskQueue: cfg.TEMPORAL_TASK_QUEUE, namespace: cfg.TEMPORAL_NAMESPACE }, 'worker running');
  // worker.run() ends after the SDK's own SIGTERM/SIGINT handling has drained in-flight tasks
  // (both the main and the fan-out worker, see create-worker.ts).
  await worker.run();
  await broker.close();
  await connection.close();
  await mqtt.endAsync().catch(() => undefined);
  await db.destroy();
  log.info('worker stopped');
}

main().catch((err: Error) => {
  process.stderr.write(`worker failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
