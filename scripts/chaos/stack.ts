// The chaos run's stack: a fresh database on the machine's Postgres, a Temporal dev server and a
// Mosquitto of the run's own, and the product's three processes (api, worker, bridge) started
// exactly as `npm run api|worker|bridge` would, through node_modules/.bin/tsx, configured by
// environment variables only. Each product process can be SIGKILLed and started again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { newApiToken } from '../../domain/credentials';
import { freePort } from '../../runtime/embedded/free-port';
import { spawnManaged, type EmbeddedLog, type ManagedProcess } from '../../runtime/embedded/managed-process';
import { startTemporalDevServer } from '../../runtime/embedded/temporal-dev-server';
import { ROOT, ownMosquitto, quiet, scratchDatabase, sleep, type Cleanup, type ScratchDb } from '../bench/support';

export const PRODUCT_PROCESSES = ['api', 'worker', 'bridge'] as const;
export type ProductName = (typeof PRODUCT_PROCESSES)[number];

const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/**
 * One product process. `node_modules/.bin/tsx` runs the program in a second Node process (its
 * child), so a SIGKILL of the tsx process alone would leave the product running as an orphan: the
 * kill goes to the whole process group (spawnManaged makes each child a group leader).
 */
export class ProductProcess {
  private proc: ManagedProcess | null = null;
  private expectExit = false;
  starts = 0;
  kills = 0;
  /** Exits nobody asked for (a crash of the product itself): each is a failure of the run. */
  readonly crashes: { code: number | null; signal: string | null; tail: string }[] = [];
  /** Called after a crash (the run restarts the process, as a supervisor would). */
  onCrash: ((p: ProductProcess) => void) | null = null;

  /** Whether the current incarnation has printed its `readyLine`. */
  private readySeen = false;

  constructor(
    readonly name: ProductName,
    private readonly env: NodeJS.ProcessEnv,
    /** Every line of output of every incarnation is appended here. */
    readonly logFile: string,
    private readonly readyLine: string,
  ) {}

  /** The current incarnation printed its ready line (`worker running`, `api listening`...). */
  get ready(): boolean {
    return this.readySeen && this.running();
  }

  get pid(): number | null {
    return this.proc?.running() ? this.proc.pid : null;
  }

  running(): boolean {
    return !!this.proc?.running();
  }

  start(): void {
    if (this.running()) return;
    this.readySeen = false;
    const out = fs.createWriteStream(this.logFile, { flags: 'a' });
    out.write(`--- ${new Date().toISOString()} start #${this.starts + 1}\n`);
    const ignore = () => undefined;
    // spawnManaged hands every output line to log.debug: kept in the file, and watched.
    const log = {
      debug: (_: unknown, line?: string) => {
        if (typeof line !== 'string') return;
        out.write(`${line}\n`);
        if (line.includes(this.readyLine)) this.readySeen = true;
      },
      info: ignore,
      warn: ignore,
      error: ignore,
    } as unknown as EmbeddedLog;
    this.proc = spawnManaged(TSX, [path.join(ROOT, this.name, 'main.ts')], { name: this.name, log, exitSignal: 'SIGKILL', env: this.env, cwd: ROOT, tailLines: 200 });
    void this.proc.exited.then(() => setTimeout(() => out.end(), 200));
    this.starts++;
    this.expectExit = false;
    const proc = this.proc;
    void proc.exited.then(({ code, signal }) => {
      // The tsx process may die while its group lives on (an orphan product would silently
      // double the process): whatever ends, the group goes with it.
      signalGroup(proc.pid, 'SIGKILL');
      if (this.expectExit || proc !== this.proc) return;
      this.crashes.push({ code, signal, tail: proc.tail() });
      this.onCrash?.(this);
    });
  }

  /** SIGKILL to the process group; resolves when the tsx process and its child are gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.kills++;
    this.expectExit = true;
    signalGroup(proc.pid, 'SIGKILL');
    await proc.exited;
    await waitGroupGone(proc.pid, 5_000);
  }

  /** A clean stop (SIGTERM to the group), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.expectExit = true;
    this.onCrash = null;
    signalGroup(proc.pid, 'SIGTERM');
    if (!(await waitGroupGone(proc.pid, graceMs))) signalGroup(proc.pid, 'SIGKILL');
    await proc.exited;
    await waitGroupGone(proc.pid, 5_000);
  }

  tail(): string {
    return this.proc?.tail() ?? '';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
}

/** True once no live process of the group is left. */
async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (groupHasMembers(pgid)) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

/** From /proc (signal 0 would also count zombies that nobody has reaped yet). */
function groupHasMembers(pgid: number): boolean {
  for (const e of fs.readdirSync('/proc')) {
    if (e.charCodeAt(0) > 57) continue;
    try {
      const s = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
    } catch {
      // gone
    }
  }
  return false;
}

export interface ChaosStack {
  db: ScratchDb;
  temporalAddress: string;
  mqttUrl: string;
  apiUrl: string;
  bridgeMetricsUrl: string;
  adminToken: string;
  processes: Record<ProductName, ProductProcess>;
  /** Where each process's output goes (kept for a failed run). */
  logDir: string;
}

export async function startChaosStack(cleanup: Cleanup): Promise<ChaosStack> {
  const db = await scratchDatabase(cleanup, 'chaos');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-chaos-'));
  cleanup.add('remove the data directory', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const [temporal, broker] = await Promise.all([
    startTemporalDevServer({ root: ROOT, dataDir: null, port: await freePort(), uiPort: await freePort(), namespace: 'default', ui: false, log: quiet }),
    ownMosquitto(cleanup),
  ]);
  cleanup.add('stop Temporal', () => temporal.stop());

  const apiPort = await freePort();
  const metricsPort = await freePort();
  const adminToken = newApiToken();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    MQTT_URL: broker.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: 'default',
    ADMIN_TOKEN: adminToken,
    DEVICE_SECRET_KEY: `chaos-${randomBytes(24).toString('hex')}`,
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    BRIDGE_METRICS_PORT: String(metricsPort),
    // Stable across the bridge's restarts: the broker keeps its session and queues for it.
    BRIDGE_ID: `chaos-${process.pid}`,
    DATA_DIR: dataDir,
    // info: the ready lines ("api listening", "worker running", "subscribed") tell a restart is done.
    LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'info',
  };
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-chaos-logs-'));
  const readyLines: Record<ProductName, string> = { api: 'api listening', worker: 'worker running', bridge: 'subscribed' };
  const processes = Object.fromEntries(
    PRODUCT_PROCESSES.map((n) => [n, new ProductProcess(n, env, path.join(logDir, `${n}.log`), readyLines[n])]),
  ) as Record<ProductName, ProductProcess>;
  // Stopped first at clean-up (last added): the product before the services it uses.
  cleanup.add('stop the product processes', () => Promise.all(PRODUCT_PROCESSES.map((n) => processes[n].stop())));
  return {
    db,
    temporalAddress: temporal.address,
    mqttUrl: broker.url,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    bridgeMetricsUrl: `http://127.0.0.1:${metricsPort}`,
    adminToken,
    processes,
    logDir,
  };
}

/** Waits until the process's current incarnation has printed its ready line (and, given a URL, that URL answers 200). */
export async function waitReady(p: ProductProcess, url?: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (p.ready) {
      if (!url) return;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        if (res.ok) return;
      } catch {
        // not answering yet
      }
    }
    if (!p.running()) throw new Error(`${p.name} exited at start:\n${p.tail()}`);
    if (Date.now() > until) throw new Error(`${p.name} was not ready within ${timeoutMs / 1000} s:\n${p.tail()}`);
    await sleep(100);
  }
}
