// Builds the Temporal worker with its activities. Used by the worker process and by tests.
//
// One process runs three SDK workers: the main one (batch and bulk workflows; the short
// activities that workflows wait on), a devices one (the same, for device lifecycle workflows on
// their own queue) and a fan-out one (long activities that create a batch's devices, start their
// workflows or apply a bulk change, with few slots). A 20,000-device batch then never holds the
// activity slots, nor fills the workflow task queue, that a new batch or a status change needs.
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Duration } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import type { CredentialStore } from '../broker/credential-store';
import type { CredentialDeriver } from '../domain/credentials';
import { deviceTaskQueue, fanoutTaskQueue } from '../domain/messages';
import type { Db } from '../db/knex';
import type { DevicePublisher } from '../runtime/device-publisher';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  db: Db;
  temporal: Client;
  credentials: CredentialDeriver;
  /** Where device logins reach the broker (broker/stores.ts picks it from the configuration). */
  broker: CredentialStore;
  /** Publishes to devices (an MQTT client with TCP_NODELAY; runtime/device-publisher.ts). */
  publisher: DevicePublisher;
  /** A prebuilt workflow bundle (tests build one for the whole suite); otherwise bundled from source. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** How long a stop waits for in-flight activities to finish before cancelling them (default 10 s). */
  shutdownGraceTime?: Duration;
  /** After this, a stop gives up waiting and run() throws (default: wait as long as it takes). */
  shutdownForceTime?: Duration;
  /** Where devices download firmware images: the API's public address (PUBLIC_URL). */
  firmwareBaseUrl?: string;
  /** How long a device's download link works (FIRMWARE_URL_TTL_S). */
  downloadUrlTtlS?: number;
  /** Fan-out activities in flight at once in this process (default 8). */
  maxConcurrentFanoutActivities?: number;
}

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.ts');
export const DEFAULT_SHUTDOWN_GRACE_TIME = '10 seconds';
export const DEFAULT_FANOUT_CONCURRENCY = 8;

/** Activities that run on the fan-out queue (the workflows proxy them there). */
const FANOUT_ACTIVITIES = ['createDevices', 'startLifecycleWorkflows', 'applyStatusToChunk', 'syncBatchCredentials'] as const;

/**
 * The main worker, with the fan-out worker tied to it: `run()` runs both and ends when both have
 * drained, `shutdown()` stops both; if either fails, the other is stopped too.
 */
export async function createWorker(d: WorkerDeps): Promise<Worker> {
  const activities = createActivities({ db: d.db, temporal: d.temporal, taskQueue: d.taskQueue, credentials: d.credentials, broker: d.broker, publisher: d.publisher, firmwareBaseUrl: d.firmwareBaseUrl, downloadUrlTtlS: d.downloadUrlTtlS });
  const shutdown = { shutdownGraceTime: d.shutdownGraceTime ?? DEFAULT_SHUTDOWN_GRACE_TIME, ...(d.shutdownForceTime !== undefined ? { shutdownForceTime: d.shutdownForceTime } : {}) };
  const fanoutNames = new Set<string>(FANOUT_ACTIVITIES);
  const workflowWorker = (taskQueue: string) =>
    Worker.create({
      connection: d.connection,
      namespace: d.namespace,
      taskQueue,
      ...(d.workflowBundle ? { workflowBundle: d.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
      activities: Object.fromEntries(Object.entries(activities).filter(([name]) => !fanoutNames.has(name))),
      // Entity workflows (one per device) mostly sleep: many fit in the cache, and evicted ones replay cheaply.
      maxCachedWorkflows: 2000,
      maxConcurrentActivityTaskExecutions: 100,
      maxConcurrentWorkflowTaskExecutions: 100,
      ...shutdown,
    });
  // Main: batch and bulk workflows (and device workflows started before the devices queue).
  const main = await workflowWorker(d.taskQueue);
  const devices = await workflowWorker(deviceTaskQueue(d.taskQueue));
  const fanout = await Worker.create({
    connection: d.connection,
    namespace: d.namespace,
    taskQueue: fanoutTaskQueue(d.taskQueue),
    activities: Object.fromEntries(Object.entries(activities).filter(([name]) => fanoutNames.has(name))),
    maxConcurrentActivityTaskExecutions: d.maxConcurrentFanoutActivities ?? DEFAULT_FANOUT_CONCURRENCY,
    ...shutdown,
  });
  return tieTogether(main, [devices, fanout]);
}

function tieTogether(main: Worker, others: Worker[]): Worker {
  const runMain = main.run.bind(main);
  const shutdownMain = main.shutdown.bind(main);
  const stopAll = () => {
    for (const w of others) if (w.getState() === 'RUNNING') w.shutdown();
    if (main.getState() === 'RUNNING') shutdownMain();
  };
  main.shutdown = stopAll;
  main.run = async () => {
    // Whichever stops first (a signal, a failure) stops the rest; run() ends when all have drained.
    const results = await Promise.allSettled([runMain(), ...others.map((w) => w.run())].map((p) => p.finally(stopAll)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  };
  return main;
}
