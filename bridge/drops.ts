// A dropped message is counted and logged, never fatal. Logs are rate-limited per reason (at most
// one line per interval, with an example topic and how many were suppressed), so a misbehaving
// device cannot flood the log.
import type { Logger } from '../runtime/logger';
import type { BridgeMetrics, DropReason } from './metrics';

export class DropLog {
  private readonly last = new Map<DropReason, { at: number; suppressed: number }>();
  constructor(
    private readonly metrics: BridgeMetrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly intervalMs = 1_000,
  ) {}

  drop(reason: DropReason, topic: string, count = 1, detail?: string): void {
    this.metrics.dropped[reason].inc(count);
    const t = this.now();
    const entry = this.last.get(reason);
    if (entry && t - entry.at < this.intervalMs) {
      entry.suppressed += count;
      return;
    }
    const suppressed = entry ? entry.suppressed : 0;
    this.last.set(reason, { at: t, suppressed: count - 1 });
    this.log.warn({ reason, topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic, detail, suppressedSinceLastLog: suppressed }, 'dropped a device message');
  }
}
