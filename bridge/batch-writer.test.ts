import pino from 'pino';
import { createBatchWriter, type BatchWriterDeps } from './batch-writer';
import type { FailureKind } from './writer';
import { RawBatch } from './raw-batch';

function batch(n: number): RawBatch {
  const b = new RawBatch(1);
  for (let i = 0; i < n; i++) b.push(`t/${i}`, Buffer.from(String(i)), i, true, i + 1, 1);
  return b;
}
const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });

function harness(attempt: (raw: RawBatch, call: number) => void) {
  const committed: string[][] = [];
  const poisoned: string[] = [];
  const failures: FailureKind[] = [];
  const sleeps: number[] = [];
  let refreshed = 0;
  let calls = 0;
  const deps: BatchWriterDeps = {
    attempt: async (raw) => {
      attempt(raw, calls++);
      committed.push([...raw.topics]);
    },
    onMissingReference: async () => void refreshed++,
    onPoison: (raw) => poisoned.push(...raw.topics),
    onFailure: (k) => failures.push(k),
    isAborted: () => false,
    log: pino({ level: 'silent' }),
    sleep: async (ms) => void sleeps.push(ms),
  };
  return { write: createBatchWriter(deps), committed, poisoned, failures, sleeps, refreshed: () => refreshed };
}

describe('batch writer', () => {
  it('splits a batch Postgres refuses until the one bad message is alone, and drops only that one', async () => {
    const h = harness((raw) => {
      if (raw.topics.includes('t/5')) throw pgError('22P02');
    });
    await h.write(batch(8));
    expect(h.poisoned).toEqual(['t/5']);
    expect(h.committed.flat().sort()).toEqual(['t/0', 't/1', 't/2', 't/3', 't/4', 't/6', 't/7']);
    expect(h.sleeps).toEqual([]); // no waiting on a poison
  });

  it('retries transient failures and bugs with backoff, without splitting or dropping', async () => {
    const h = harness((_, call) => {
      if (call === 0) throw pgError('40P01'); // deadlock
      if (call === 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      if (call === 2) throw new TypeError('oops');
    });
    await h.write(batch(4));
    expect(h.failures).toEqual(['transient', 'transient', 'bug']);
    expect(h.committed).toEqual([['t/0', 't/1', 't/2', 't/3']]);
    expect(h.sleeps).toEqual([100, 200, 400]);
    expect(h.poisoned).toEqual([]);
  });

  it('looks devices up again after a foreign-key failure, and splits if it persists', async () => {
    const h = harness((raw, call) => {
      if (call === 0) throw pgError('23503');
      if (raw.topics.includes('t/1') && call < 20) throw pgError('23503');
    });
    await h.write(batch(2));
    expect(h.refreshed()).toBeGreaterThanOrEqual(3);
    expect(h.poisoned).toEqual(['t/1']);
    expect(h.committed).toEqual([['t/0']]);
  });
});
