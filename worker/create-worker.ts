// Builds the Temporal worker with its activities. Used by the worker process and by tests.
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import type { CredentialDeriver } from '../domain/credentials';
import type { Db } from '../db/knex';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  db: Db;
  temporal: Client;
  credentials: CredentialDeriver;
  /** A prebuilt workflow bundle (tests build one for the whole suite); otherwise bundled from source. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.ts');

export function createWorker(d: WorkerDeps): Promise<Worker> {
  return Worker.create({
    connection: d.connection,
    namespace: d.namespace,
    taskQueue: d.taskQueue,
    ...(d.workflowBundle ? { workflowBundle: d.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ db: d.db, temporal: d.temporal, taskQueue: d.taskQueue, credentials: d.credentials }),
    // Entity workflows (one per device) mostly sleep: many fit in the cache, and evicted ones replay cheaply.
    maxCachedWorkflows: 2000,
    maxConcurrentActivityTaskExecutions: 100,
    maxConcurrentWorkflowTaskExecutions: 100,
  });
}
