// Reconnect delays: exponential with jitter. mqtt.js's reconnectPeriod is a fixed delay, so a
// broker restart would see every device of a fleet come back in the same instant; doubling the
// delay each failure and drawing it from [base/2, base] ("equal jitter") spreads them out while
// never retrying at once.
import type { Rng } from './models/rng';

export interface BackoffOptions {
  /** The first retry's ceiling (ms). */
  initialMs: number;
  /** The ceiling the doubling stops at (ms). */
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, o: BackoffOptions, rng: Rng): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** Math.min(attempt, 52));
  return Math.round(base / 2 + (rng() * base) / 2);
}
