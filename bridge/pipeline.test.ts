import { Pipeline, type PipelineOptions } from './pipeline';
import type { RawBatch } from './raw-batch';

function harness(over: Partial<PipelineOptions> = {}) {
  const written: RawBatch[] = [];
  const acked: number[] = [];
  const pending = new Map<number, () => void>();
  let drained = 0;
  const p = new Pipeline({
    batchRows: 3,
    flushMs: 20,
    maxBuffered: 10,
    maxInFlight: 2,
    write: (b) => {
      written.push(b);
      return new Promise<void>((resolve) => pending.set(b.seq, resolve));
    },
    committed: (b) => acked.push(b.seq),
    drained: () => drained++,
    ...over,
  });
  const add = (n: number) => {
    for (let i = 0; i < n; i++) p.add(`t/${i}`, Buffer.from('1'), true, i + 1, 1);
  };
  const finish = async (seq: number) => {
    pending.get(seq)!();
    pending.delete(seq);
    await new Promise((r) => setImmediate(r));
  };
  return { p, written, acked, pending, add, finish, drained: () => drained };
}

describe('pipeline', () => {
  it('seals a batch when it is full and writes at most maxInFlight at once', () => {
    const h = harness();
    h.add(8);
    expect(h.written.map((b) => b.size)).toEqual([3, 3]); // the third full batch waits for a writer
    expect(h.p.queuedBatches).toBe(0);
    h.add(1);
    expect(h.p.queuedBatches).toBe(1);
    expect(h.p.buffered).toBe(9);
  });

  it('writes a batch with redelivered (DUP) messages only once every earlier batch has finished', async () => {
    const h = harness();
    h.add(3); // batch 1, in flight
    for (let i = 0; i < 3; i++) h.p.add(`t/${i}`, Buffer.from('1'), true, i + 1, 2, true); // batch 2: their redelivery
    expect(h.written.map((b) => b.seq)).toEqual([1]); // a writer is free, but batch 1 must commit first
    expect(h.p.queuedBatches).toBe(1);
    await h.finish(1);
    expect(h.written.map((b) => b.seq)).toEqual([1, 2]);
    h.add(3); // batch 3 (no DUP) may run alongside batch 2
    expect(h.written.map((b) => b.seq)).toEqual([1, 2, 3]);
  });

  it('acknowledges batches in order even when a later one commits first', async () => {
    const h = harness();
    h.add(6);
    await h.finish(2);
    expect(h.acked).toEqual([]); // batch 1 is not durable yet
    expect(h.p.buffered).toBe(6);
    await h.finish(1);
    expect(h.acked).toEqual([1, 2]);
    expect(h.p.buffered).toBe(0);
    expect(h.p.committedMessages).toBe(6);
  });

  it('seals on time, and a batch due while the writers are busy keeps growing until one frees up', async () => {
    const h = harness({ batchRows: 100 });
    h.add(1);
    await new Promise((r) => setTimeout(r, 40));
    expect(h.written.map((b) => b.size)).toEqual([1]);
    h.add(1);
    await new Promise((r) => setTimeout(r, 40));
    expect(h.written.map((b) => b.size)).toEqual([1, 1]);
    h.add(1); // both writers busy: due, not sealed
    await new Promise((r) => setTimeout(r, 40));
    h.add(2);
    expect(h.written).toHaveLength(2);
    await h.finish(1);
    expect(h.written.map((b) => b.size)).toEqual([1, 1, 3]);
  });

  it('is full at maxBuffered and says so when it drained', async () => {
    const h = harness();
    h.add(10);
    expect(h.p.isFull()).toBe(true);
    const before = h.drained();
    await h.finish(1);
    expect(h.p.isFull()).toBe(false);
    expect(h.drained()).toBeGreaterThan(before);
  });

  it('flush() resolves once everything received before it is committed', async () => {
    const h = harness();
    h.add(4);
    let flushed = false;
    const f = h.p.flush().then(() => (flushed = true));
    await h.finish(1);
    expect(flushed).toBe(false);
    await h.finish(2);
    await f;
    expect(flushed).toBe(true);
    expect(h.acked).toEqual([1, 2]);
  });

  it('stamps messages with strictly increasing receive times', () => {
    const h = harness({ now: () => 1_000, batchRows: 100 });
    h.add(3);
    void h.p.flush();
    expect(h.written[0]!.ats).toEqual([1_000, 1_000.001, 1_000.002]);
  });

  it('abandon() acknowledges nothing more', async () => {
    const h = harness();
    h.add(3);
    h.p.abandon();
    await h.finish(1);
    expect(h.acked).toEqual([]);
    h.add(3);
    expect(h.p.received).toBe(3);
  });
});
