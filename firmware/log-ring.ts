// The device's recent log records in a fixed-size ring: what the `read-logs` diagnostic command
// returns, also when the records could not be published (broker unreachable).
import type { LogMessage } from '../domain/device-messages';

export class LogRing {
  private readonly items: (LogMessage | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity = 200) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error('log ring capacity must be a positive integer');
    this.items = new Array<LogMessage | undefined>(capacity);
  }

  push(record: LogMessage): void {
    this.items[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** The last n records, oldest first. */
  last(n = this.capacity): LogMessage[] {
    const k = Math.max(0, Math.min(Math.floor(n), this.count));
    const out: LogMessage[] = [];
    for (let i = this.count - k; i < this.count; i++) out.push(this.items[(this.next - this.count + i + this.capacity) % this.capacity]!);
    return out;
  }
}
