// What the MQTT benchmarks (ingest, control, connections) share: the machine line, a scratch
// database with device rows, a Mosquitto of the run's own, the bridge as a child process (so its
// CPU and memory are its own), per-process CPU and RSS from /proc, clean-up on any exit, and the
// small formatting helpers. Nothing here is the product: the product code is imported as is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import knexFactory from 'knex';
import pino from 'pino';
import { createDb, migrateLatest, type Db } from '../../db/knex';
import { newEntityId } from '../../domain/ids';
import type { BridgeStats } from '../../bridge/bridge';
import type { FleetCredential } from '../../firmware/fleet';
import { freePort } from '../../runtime/embedded/free-port';
import { spawnManaged, type ManagedProcess } from '../../runtime/embedded/managed-process';
import { findMosquitto, startMosquitto, type RunningMosquitto } from '../../runtime/embedded/mosquitto';

export const ROOT = path.resolve(__dirname, '..', '..');
export const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const quiet = pino({ level: 'silent' });
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ clean-up and exit codes

/** Clean-up steps, run last-in first-out once, whatever happens (error, Ctrl-C, SIGTERM). */
export class Cleanup {
  private readonly steps: { name: string; fn: () => Promise<unknown> | unknown }[] = [];
  private running: Promise<void> | null = null;

  add(name: string, fn: () => Promise<unknown> | unknown): void {
    this.steps.push({ name, fn });
  }

  run(): Promise<void> {
    return (this.running ??= (async () => {
      while (this.steps.length > 0) {
        const { name, fn } = this.steps.pop()!;
        try {
          await Promise.race([Promise.resolve().then(fn), sleep(20_000).then(() => Promise.reject(new Error('timed out after 20 s')))]);
        } catch (err) {
          console.error(`clean-up "${name}" failed: ${(err as Error).message}`);
        }
      }
    })());
  }
}

/**
 * Runs a benchmark: `main` returns the exit code (0, or 1 for a missed target under --check).
 * Clean-up runs on success, on failure and on SIGINT/SIGTERM.
 */
export function runBench(main: (cleanup: Cleanup) => Promise<number>): void {
  const cleanup = new Cleanup();
  const onSignal = (signal: string) => {
    console.error(`\n${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  let code = 1;
  void main(cleanup)
    .then((c) => (code = c))
    .catch((err: unknown) => {
      console.error(err);
      code = 1;
    })
    .finally(async () => {
      await cleanup.run();
      process.exit(code);
    });
}

/** Target verdicts: printed as PASS/MISS; with --check a miss makes the exit code 1. */
export class Targets {
  readonly results: { name: string; ok: boolean; detail: string }[] = [];
  add(name: string, ok: boolean, detail: string): void {
    this.results.push({ name, ok, detail });
  }
  print(): void {
    console.log('\ntargets');
    for (const r of this.results) console.log(`  ${r.ok ? 'PASS' : 'MISS'}  ${r.name}: ${r.detail}`);
  }
  exitCode(check: boolean): number {
    return check && this.results.some((r) => !r.ok) ? 1 : 0;
  }
}

// ------------------------------------------------------------------ the machine

export function mosquittoBin(): string {
  return findMosquitto() ?? '/usr/sbin/mosquitto';
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** One line: CPU, cores, RAM, OS, Node.js, Mosquitto and PostgreSQL versions. */
export async function machineLine(): Promise<string> {
  const cpus = os.cpus();
  const r = spawnSync(mosquittoBin(), ['-h'], { encoding: 'utf8' });
  const mosquitto = /mosquitto version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  let pgVersion = 'unknown';
  try {
    pgVersion = ((await admin.raw('SHOW server_version')) as { rows: { server_version: string }[] }).rows[0]!.server_version.split(' ')[0]!;
  } finally {
    await admin.destroy();
  }
  return `${cpus[0]?.model ?? 'unknown CPU'} x${cpus.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${osName()}, Node.js ${process.version}, Mosquitto ${mosquitto}, PostgreSQL ${pgVersion}, ulimit -n ${openFilesLimit(process.pid) ?? '?'}`;
}

/** "Max open files" (soft) of a process, from /proc/<pid>/limits. */
export function openFilesLimit(pid: number): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ database, broker, devices

export interface ScratchDb {
  name: string;
  url: string;
  db: Db;
}

/** A migrated database of the run's own, dropped at clean-up. */
export async function scratchDatabase(cleanup: Cleanup, tag: string): Promise<ScratchDb> {
  const name = `rdm_bench_${tag}_${Date.now()}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  cleanup.add(`drop database ${name}`, async () => {
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const db = createDb(u.toString(), { min: 0, max: 4 });
  cleanup.add('close the database pool', () => db.destroy());
  await migrateLatest(db);
  return { name, url: u.toString(), db };
}

/** A Mosquitto of the run's own on a free port (never the machine's broker), stopped at clean-up. */
export async function ownMosquitto(cleanup: Cleanup, extraConfig: string[] = []): Promise<RunningMosquitto> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-mqtt-'));
  cleanup.add('remove the broker directory', () => fs.rmSync(dir, { recursive: true, force: true }));
  const broker = await startMosquitto({
    bin: mosquittoBin(),
    port: await freePort(),
    dir,
    persistent: false,
    log: quiet,
    // -1 (no limit) is Mosquitto's default; said here because the connections bench relies on it.
    extraConfig: ['max_connections -1', ...extraConfig],
  });
  cleanup.add('stop Mosquitto', () => broker.stop());
  return broker;
}

/** One batch row and a devices row per credential (as provisioning would have made them), in bulk. */
export async function insertDevices(db: Db, creds: readonly FleetCredential[], name = 'bench'): Promise<string> {
  const batchId = newEntityId();
  await db('batches').insert({ id: batchId, name, count: creds.length, provisioning_status: 'ready', devices_created: creds.length });
  for (let from = 0; from < creds.length; from += 5_000) {
    const chunk = creds.slice(from, from + 5_000);
    await db.raw(
      `INSERT INTO devices (id, batch_id, seq, secret_hash, pairing_code_hash, model, status)
       SELECT id, ?, seq, 'bench', 'bench', model, 'paired'
         FROM unnest(?::text[], ?::int[], ?::text[]) AS u(id, seq, model)`,
      [batchId, chunk.map((c) => c.deviceId), chunk.map((_, i) => from + i), chunk.map((c) => c.model ?? null) as string[]],
    );
  }
  return batchId;
}

// ------------------------------------------------------------------ the bridge as a child process

export interface BridgeProcess {
  pid: number;
  metricsUrl: string;
  process: ManagedProcess;
  /** The bridge's own counters (its /healthz detail). */
  stats(): Promise<BridgeStats>;
  /** Its /metrics as "name{labels}" -> value. */
  metrics(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/**
 * `node --import tsx bridge/main.ts`, i.e. the bridge exactly as `npm run bridge` runs it, with its
 * default batching (BRIDGE_* variables in this process's environment pass through).
 */
export async function startBridgeProcess(cleanup: Cleanup, o: { databaseUrl: string; mqttUrl: string }): Promise<BridgeProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: o.databaseUrl,
    MQTT_URL: o.mqttUrl,
    BRIDGE_METRICS_PORT: String(port),
    HOST: '127.0.0.1',
    BRIDGE_ID: `bench-${process.pid}`,
    LOG_LEVEL: process.env.BENCH_BRIDGE_LOG_LEVEL ?? 'warn',
  };
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bridge', 'main.ts')], { name: 'bridge', log: quiet, exitSignal: 'SIGTERM', env, cwd: ROOT });
  const metricsUrl = `http://127.0.0.1:${port}`;
  const stop = () => proc.stop('SIGTERM', 20_000);
  cleanup.add('stop the bridge', stop);
  const stats = async (): Promise<BridgeStats> => {
    const res = await getIdempotent(`${metricsUrl}/healthz`);
    return ((await res.json()) as { detail: BridgeStats }).detail;
  };
  const until = Date.now() + 60_000;
  for (;;) {
    if (!proc.running()) throw new Error(`the bridge exited at start:\n${proc.tail()}`);
    try {
      if ((await stats()).connected) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`the bridge did not connect within 60 s:\n${proc.tail()}`);
    await sleep(100);
  }
  return {
    pid: proc.pid,
    metricsUrl,
    process: proc,
    stats,
    async metrics() {
      const text = await (await getIdempotent(`${metricsUrl}/metrics`)).text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        out.set(line.slice(0, i), Number(line.slice(i + 1)));
      }
      return out;
    },
    stop,
  };
}

// ------------------------------------------------------------------ per-process CPU and memory

const getconf = (name: string, fallback: number) => Number(spawnSync('getconf', [name], { encoding: 'utf8' }).stdout.trim()) || fallback;
const CLK_TCK = getconf('CLK_TCK', 100);
const PAGE_SIZE = getconf('PAGESIZE', 4096);

/** utime + stime of a process, in clock ticks (null when it is gone). */
export function cpuTicks(pid: number): number | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return Number(f[11]) + Number(f[12]); // fields 14 and 15
  } catch {
    return null;
  }
}

/** Resident memory of a process in bytes (null when it is gone). */
export function rssBytes(pid: number): number | null {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_SIZE;
  } catch {
    return null;
  }
}

const BACKEND = /^postgres: [^:]+: \S+ (\S+) (?:\[local\]|\S+\(\d+\))/;

/**
 * The PostgreSQL processes: postmaster and background workers (WAL writer, checkpointer...), and
 * the backends connected to `database` (when given; others' sessions on the shared server are left out).
 */
export function postgresPids(database?: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (e.charCodeAt(0) > 57) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/comm`, 'utf8') !== 'postgres\n') continue;
      if (database) {
        const backend = BACKEND.exec(fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' '));
        if (backend && backend[1] !== database) continue;
      }
      out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Waits (up to maxWaitS) until the machine is quiet: less than `threshold` % of one core busy over
 * a second. Other jobs on a shared machine disturb every figure; the `other` CPU column shows it too.
 */
export async function awaitQuiet(maxWaitS = 60, threshold = 30): Promise<void> {
  const until = performance.now() + maxWaitS * 1000;
  let warned = false;
  for (;;) {
    const a = machineBusyTicks();
    await sleep(1_000);
    const b = machineBusyTicks();
    const busy = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100 * os.cpus().length;
    if (busy < threshold) {
      if (warned) console.log(`machine quiet now (${Math.round(busy)} % busy)`);
      return;
    }
    if (performance.now() > until) {
      console.log(`WARNING: the machine stayed busy (${Math.round(busy)} % of one core used by other processes): figures are disturbed`);
      return;
    }
    if (!warned) console.log(`machine busy (${Math.round(busy)} % of one core used by other processes): waiting up to ${maxWaitS} s for quiet`);
    warned = true;
  }
}

/** The whole machine from /proc/stat: busy, total and softirq ticks (loopback TCP work is mostly softirq, charged to no process). */
function machineBusyTicks(): { busy: number; total: number; softirq: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((s, v) => s + v, 0);
  return { busy: total - f[3]! - f[4]!, total, softirq: f[6]! };
}

export interface CpuSnapshot {
  at: number;
  ticks: Map<string, Map<number, number>>;
  machine: { busy: number; total: number; softirq: number };
}

/**
 * Watches named groups of processes: CPU between two snapshots (percent of one core, so 2 cores
 * = 200 %) and peak RSS since the last resetPeaks(), sampled every `everyMs`.
 */
export class ProcMonitor {
  private readonly peaks = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private pgPids: number[] = [];
  private pgAt = 0;

  /** `postgres` is a reserved group name: the server's processes and the backends of `postgresDb`. */
  constructor(
    private readonly groups: Record<string, () => number[]>,
    private readonly postgresDb?: string,
    everyMs = 250,
  ) {
    this.timer = setInterval(() => this.sampleRss(), everyMs);
    this.timer.unref();
  }

  private pids(group: string): number[] {
    if (group === 'postgres') {
      // Backends come and go; a directory scan 4 times a second is cheap, more is not needed.
      if (performance.now() - this.pgAt > 1_000) {
        this.pgPids = postgresPids(this.postgresDb);
        this.pgAt = performance.now();
      }
      return this.pgPids;
    }
    return this.groups[group]!();
  }

  private sampleRss(): void {
    for (const g of Object.keys(this.groups)) {
      if (g === 'postgres') continue; // shared buffers counted once per backend: meaningless as a sum
      let sum = 0;
      for (const pid of this.pids(g)) sum += rssBytes(pid) ?? 0;
      if (sum > (this.peaks.get(g) ?? 0)) this.peaks.set(g, sum);
    }
  }

  rss(group: string): number {
    let sum = 0;
    for (const pid of this.pids(group)) sum += rssBytes(pid) ?? 0;
    return sum;
  }

  peakRss(group: string): number {
    this.sampleRss();
    return this.peaks.get(group) ?? 0;
  }

  resetPeaks(): void {
    this.peaks.clear();
    this.sampleRss();
  }

  snapshot(): CpuSnapshot {
    this.pgAt = 0; // fresh postgres list at each snapshot
    const ticks = new Map<string, Map<number, number>>();
    for (const g of Object.keys(this.groups)) {
      const m = new Map<number, number>();
      for (const pid of this.pids(g)) {
        const t = cpuTicks(pid);
        if (t !== null) m.set(pid, t);
      }
      ticks.set(g, m);
    }
    return { at: performance.now(), ticks, machine: machineBusyTicks() };
  }

  /** CPU per group between two snapshots, % of one core; `machine` is the whole box (cores x 100 %), `softirq` the kernel's network work, `other` what none of the groups used. */
  cpu(a: CpuSnapshot, b: CpuSnapshot): Record<string, number> {
    const seconds = (b.at - a.at) / 1000;
    const out: Record<string, number> = {};
    for (const [g, after] of b.ticks) {
      const before = a.ticks.get(g) ?? new Map<number, number>();
      let d = 0;
      for (const [pid, t] of after) d += t - (before.get(pid) ?? (g === 'postgres' ? t : 0));
      out[g] = (d / CLK_TCK / seconds) * 100;
    }
    const dt = b.machine.total - a.machine.total;
    const ours = Object.values(out).reduce((s, v) => s + v, 0);
    const share = (ticks: number) => (dt > 0 ? (ticks / dt) * 100 * os.cpus().length : 0);
    out.machine = share(b.machine.busy - a.machine.busy);
    out.softirq = share(b.machine.softirq - a.machine.softirq);
    // Everything else on the box (other services, other sessions' jobs): a disturbed run shows here.
    out.other = Math.max(0, out.machine - ours - out.softirq);
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ------------------------------------------------------------------ formatting

export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
export const pct = (n: number) => `${Math.round(n)} %`;
export const secs = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

/** The p-th percentile (0..100) of ascending values, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** A plain text table, columns padded (numbers right-aligned). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (/^[-+~]?[\d,.]+( ?[%a-zA-Z/]+)?$|^[\d.]+ s$/.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * A GET sent once more when its pooled keep-alive connection was closed by the server just as it
 * was reused ("other side closed", ECONNRESET): the race every HTTP client retries idempotent
 * requests for. Any other failure, and a second one, is the caller's.
 */
export async function getIdempotent(url: string): Promise<Response> {
  try {
    return await fetch(url);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code !== 'ECONNRESET' && cause?.code !== 'UND_ERR_SOCKET') throw err;
    return fetch(url);
  }
}

/**
 * Runs the benchmark script's own device side (`<script> --role devices`) in a child process, so
 * that the devices' CPU is not the measured process's; resolves once it reports them ready.
 */
export async function forkDevices(cleanup: Cleanup, script: string, mqttUrl: string, creds: readonly FleetCredential[]): Promise<{ pid: number }> {
  const child: ChildProcess = fork(script, ['--role', 'devices'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanup.add('stop the devices', async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(`devices: ${m.error}`))));
    child.once('exit', (code) => reject(new Error(`the devices process exited (${code})`)));
  });
  child.send({ mqttUrl, creds });
  await ready;
  return { pid: child.pid! };
}
