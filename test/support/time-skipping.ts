// The time-skipping test server (design/environment.md) with a worker of the product's workflows
// and real activities on it: the suite's Postgres and Mosquitto, the stack's credentials. The
// activities' Temporal client is the stack's dev server by default (the device lifecycle
// workflows live there: the test server cannot register the product's search attributes).
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findTemporalTestServer } from '../../runtime/embedded/temporal-cli';
import { mqttPublisher } from '../../runtime/device-publisher';
import { connectMqtt } from '../../runtime/mqtt-client';
import { createWorker } from '../../worker/create-worker';
import { testCredentialStore } from './broker';
import { testEnv } from './env';
import type { Stack } from './stack';

const ROOT = path.resolve(__dirname, '..', '..');

export interface TimeSkipping {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startTimeSkipping(s: Stack, name: string, opts: { activitiesClient?: (env: TestWorkflowEnvironment) => Client } = {}): Promise<TimeSkipping> {
  const bin = findTemporalTestServer(ROOT);
  if (!bin) throw new Error('no temporal-test-server: run `npm run setup` (scripts/ensure-setup.js installs it)');
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: bin } } });
  const mqtt = connectMqtt(testEnv().mqttUrl, `test-${name}`);
  await new Promise<void>((resolve) => mqtt.once('connect', () => resolve()));
  const taskQueue = `${name}-${process.pid}`;
  const worker = await createWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    db: s.db,
    temporal: opts.activitiesClient ? opts.activitiesClient(env) : s.temporal,
    credentials: s.credentials,
    broker: testCredentialStore(),
    publisher: mqttPublisher(mqtt),
    workflowBundle: { codePath: testEnv().workflowBundlePath },
  });
  const running = worker.run();
  return {
    env,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await mqtt.endAsync(true);
      await env.teardown();
    },
  };
}
