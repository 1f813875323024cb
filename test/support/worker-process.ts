// The worker as its own process (worker/main.ts), for tests that kill or stop it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { testEnv } from './env';

const root = path.resolve(__dirname, '..', '..');

export function spawnWorker(taskQueue: string, dataDir: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const t = testEnv();
  // `node --import tsx`, not the tsx CLI: the CLI runs the program in a child, which a SIGKILL of the CLI would orphan.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: t.databaseUrl,
      TEMPORAL_ADDRESS: t.temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
      MQTT_URL: t.mqttUrl,
      DEVICE_SECRET_KEY: t.deviceSecretKey,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => process.env.TEST_LOG_LEVEL && process.stderr.write(d));
  return child;
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => child.once('exit', (code) => res(code)));
}
