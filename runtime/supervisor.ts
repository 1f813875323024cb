// Runs the product's processes (api, worker, ...) as children, restarts one that dies, and stops
// them all on SIGINT/SIGTERM. Used by `npm start` for the one-command, embedded mode; a real
// deployment runs each process alone under its own supervisor (systemd, Kubernetes, compose).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from './logger';

export interface ProcessSpec {
  name: string;
  /** A TypeScript entry point, relative to the project root. */
  entry: string;
  env: NodeJS.ProcessEnv;
}

const ROOT = path.resolve(__dirname, '..');
const TSX_CLI = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(private readonly log: Logger) {}

  start(spec: ProcessSpec, restarts = 0): void {
    const child = spawn(process.execPath, [TSX_CLI, path.join(ROOT, spec.entry)], { cwd: ROOT, env: spec.env, stdio: 'inherit' });
    this.children.set(spec.name, child);
    const startedAt = Date.now();
    child.on('exit', (code, signal) => {
      this.children.delete(spec.name);
      if (this.stopping) return;
      // A process that ran a while before dying gets a fresh backoff; one crash-looping waits longer.
      const n = Date.now() - startedAt > 30_000 ? 0 : restarts + 1;
      const delay = Math.min(30_000, 500 * 2 ** n);
      this.log.error({ process: spec.name, code, signal, restartInMs: delay }, `${spec.name} exited; restarting`);
      setTimeout(() => !this.stopping && this.start(spec, n), delay).unref();
    });
  }

  async stop(timeoutMs = 20_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
