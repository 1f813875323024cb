// Batching: messages fill the current batch; it is sealed when it holds `batchRows` messages, or
// `flushMs` after its first message once a writer is free (so a slow database gets fewer, larger
// batches). Up to `maxInFlight` batches are written at once while the next one fills. Batches
// finish in any order but are acknowledged in order. `buffered` counts every message received and
// not yet committed: at `maxBuffered` the intake stops reading.
import { RawBatch } from './raw-batch';

export interface PipelineOptions {
  batchRows: number;
  flushMs: number;
  maxBuffered: number;
  maxInFlight: number;
  /** Writes one batch (with its own retries); resolves when committed or finally dropped. */
  write(batch: RawBatch): Promise<void>;
  /** A batch is durable and every earlier one too: acknowledge its messages. */
  committed(batch: RawBatch): void;
  /** The buffer went below its bound again. */
  drained(): void;
  now?: () => number;
}

export class Pipeline {
  buffered = 0;
  received = 0;
  committedMessages = 0;
  private current: RawBatch;
  private seq = 0;
  private readonly queue: RawBatch[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushDue = false;
  /** Written batches waiting for an earlier one before they are acknowledged (by seq). */
  private readonly done = new Map<number, RawBatch>();
  private nextAck = 1;
  private flushWaiters: { upTo: number; resolve: () => void }[] = [];
  private closed = false;
  private lastAt = 0;

  constructor(private readonly o: PipelineOptions) {
    this.current = new RawBatch(++this.seq);
  }

  get inFlightBatches(): number {
    return this.inFlight;
  }
  get queuedBatches(): number {
    return this.queue.length;
  }
  isFull(): boolean {
    return this.buffered >= this.o.maxBuffered;
  }

  add(topic: string, payload: Buffer, live: boolean, ackId: number, conn: number, dup = false): void {
    if (this.closed) return;
    const b = this.current;
    // Receive times strictly increase (by a microsecond within one millisecond): "newer wins"
    // upserts then follow arrival order even when two batches commit out of order.
    let at = (this.o.now ?? Date.now)();
    if (at <= this.lastAt) at = this.lastAt + 0.001;
    this.lastAt = at;
    b.push(topic, payload, at, live, ackId, conn, dup);
    this.buffered++;
    this.received++;
    if (b.size >= this.o.batchRows) this.seal();
    else if (b.size === 1 && !this.timer) {
      this.timer = setTimeout(() => this.onTimer(), this.o.flushMs);
    }
  }

  private onTimer(): void {
    this.timer = null;
    if (this.current.size === 0) return;
    if (this.inFlight < this.o.maxInFlight) this.seal();
    else this.flushDue = true; // sealed when a writer frees up: meanwhile the batch keeps growing
  }

  private seal(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushDue = false;
    if (this.current.size === 0) return;
    this.queue.push(this.current);
    this.current = new RawBatch(++this.seq);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.o.maxInFlight && this.queue.length > 0) {
      // A batch with redelivered messages waits for every earlier batch: their first deliveries
      // may be in those, and must be committed (and recorded) before the check.
      if (this.queue[0]!.hasDup && this.inFlight > 0) break;
      const batch = this.queue.shift()!;
      this.inFlight++;
      this.o.write(batch).then(
        () => this.finished(batch),
        () => this.finished(batch), // write() handles its own failures; never leave a batch behind
      );
    }
  }

  private finished(batch: RawBatch): void {
    this.inFlight--;
    this.done.set(batch.seq, batch);
    while (this.done.has(this.nextAck)) {
      const b = this.done.get(this.nextAck)!;
      this.done.delete(this.nextAck);
      this.nextAck++;
      if (!this.closed) this.o.committed(b);
      this.buffered -= b.size;
      this.committedMessages += b.size;
    }
    if (this.flushDue || (this.queue.length === 0 && this.current.size >= this.o.batchRows)) this.seal();
    this.pump();
    if (!this.isFull()) this.o.drained();
    if (this.flushWaiters.length > 0) {
      const ready = this.flushWaiters.filter((w) => w.upTo < this.nextAck);
      this.flushWaiters = this.flushWaiters.filter((w) => w.upTo >= this.nextAck);
      for (const w of ready) w.resolve();
    }
  }

  /** Seals the current batch and resolves when everything received so far is committed. */
  flush(): Promise<void> {
    this.seal();
    const upTo = this.current.seq - 1;
    if (upTo < this.nextAck || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push({ upTo, resolve }));
  }

  /** Abandons everything not yet written (a crash, for tests): nothing more is acknowledged. */
  abandon(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.flushWaiters;
    this.flushWaiters = [];
    for (const f of w) f.resolve();
  }
}
