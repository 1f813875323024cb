// What to do when a batch does not commit. Nothing is acknowledged before its commit, so the
// choices are: try again (the database is away, a deadlock, a bug: the bridge then stalls at its
// buffer bound instead of dropping good messages), look devices up again (one was deleted), or,
// when Postgres refuses a value, split the batch until the one message it refuses is alone and
// drop that one (counted as write_failed).
import type { Logger } from '../runtime/logger';
import type { RawBatch } from './raw-batch';
import { classifyFailure, type FailureKind } from './writer';

export interface BatchWriterDeps {
  /** Builds and writes the batch in one transaction (and does the after-commit work). */
  attempt(raw: RawBatch): Promise<void>;
  /** A foreign key failed: forget cached devices and rules. */
  onMissingReference(): Promise<void>;
  /** A single message Postgres refuses. */
  onPoison(raw: RawBatch, err: Error): void;
  onFailure?(kind: FailureKind): void;
  isAborted(): boolean;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export function createBatchWriter(d: BatchWriterDeps): (raw: RawBatch) => Promise<void> {
  const sleep = d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = d.now ?? Date.now;
  let lastWarned = 0;

  async function write(raw: RawBatch): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (d.isAborted()) throw new Error('bridge stopped');
      try {
        await d.attempt(raw);
        return;
      } catch (err) {
        if (d.isAborted()) throw err;
        const kind = classifyFailure(err);
        d.onFailure?.(kind);
        if (kind === 'poison' || (kind === 'missing-reference' && attempt >= 3)) {
          if (raw.size <= 1) {
            d.onPoison(raw, err as Error);
            return;
          }
          const half = raw.size >> 1;
          await write(raw.slice(0, half));
          await write(raw.slice(half, raw.size));
          return;
        }
        if (kind === 'missing-reference') await d.onMissingReference();
        if (kind === 'bug') {
          d.log.error({ err, attempt, messages: raw.size }, 'batch write failed with an error no retry should fix; retrying (reading stops at the buffer bound)');
        } else if (now() - lastWarned > 5_000) {
          lastWarned = now();
          d.log.warn({ err: (err as Error).message, code: (err as { code?: string }).code, attempt, messages: raw.size }, 'batch write failed; retrying');
        }
        await sleep(Math.min(100 * 2 ** Math.min(attempt, 8), kind === 'bug' ? 30_000 : 5_000));
      }
    }
  }
  return write;
}
