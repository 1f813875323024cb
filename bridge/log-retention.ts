// Device log retention: every minute, delete logs older than LOG_RETENTION_DAYS and beyond
// LOG_RETENTION_PER_DEVICE per device, in bounded deletes with pauses between them so ingest
// never waits on it. One bridge at a time prunes (a Postgres advisory lock); the per-device cap
// is checked for the devices that logged since the last run, and for all devices now and then.
import type { Pool } from 'pg';
import { pruneLogs, type PruneResult } from '../db/repositories/device-logs';
import type { Logger } from '../runtime/logger';

export interface LogRetentionOptions {
  pool: Pool;
  days: number;
  perDevice: number;
  intervalMs?: number;
  chunk?: number;
  /** Check every device against the cap every this many runs (the first run does). */
  fullEvery?: number;
  log: Logger;
  onPruned?: (rows: number) => void;
  now?: () => number;
}

const LOCK = "hashtext('rdm.device-logs.retention')";

export class LogRetention {
  private recent = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private runs = 0;
  private stopped = false;

  constructor(private readonly o: LogRetentionOptions) {}

  /** Devices that logged: checked against the cap at the next run. */
  noteDevices(ids: readonly string[]): void {
    for (const id of ids) this.recent.add(id);
  }

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.o.intervalMs ?? 60_000);
    this.timer.unref();
  }

  /** One pass; null when another bridge holds the lock (or one pass is still running here). */
  async runOnce(opts: { full?: boolean } = {}): Promise<PruneResult | null> {
    if (this.running || this.stopped) return null;
    const p = this.pass(opts.full ?? false);
    this.running = p;
    try {
      return await p;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'log retention pass failed');
      return null;
    } finally {
      this.running = null;
    }
  }

  private async pass(forceFull: boolean): Promise<PruneResult | null> {
    const client = await this.o.pool.connect();
    try {
      const got = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK}) AS ok`);
      if (!got.rows[0]!.ok) return null;
      try {
        const full = forceFull || this.runs % (this.o.fullEvery ?? 60) === 0;
        this.runs++;
        const devices = full ? undefined : [...this.recent];
        this.recent = new Set();
        const before = new Date((this.o.now ?? Date.now)() - this.o.days * 86_400_000);
        const r = await pruneLogs(client, {
          before,
          perDevice: this.o.perDevice,
          deviceIds: devices,
          chunk: this.o.chunk,
          between: async () => {
            await new Promise((res) => setTimeout(res, 10));
            return !this.stopped;
          },
        });
        const rows = r.byAge + r.byCap;
        if (rows > 0) {
          this.o.onPruned?.(rows);
          this.o.log.info({ byAge: r.byAge, byCap: r.byCap }, 'pruned device logs');
        }
        return r;
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${LOCK})`);
      }
    } finally {
      client.release();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }
}
