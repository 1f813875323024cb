// One timer for thousands of periodic jobs (the fleet's devices): a hashed timing wheel. Each
// entry keeps its exact due time and advances it by its period, so the long-run rate is exact
// whatever the timer jitter; a late loop fires what is due in one pass (catching up) instead of
// dropping it. One setTimeout per resolution step instead of one setInterval per device keeps
// the event loop's timer list short and the cost per firing tiny.
import { performance } from 'node:perf_hooks';

export interface WheelEntry {
  /** Next due time (performance.now() ms). */
  due: number;
  period: number;
  fire: () => void;
  active: boolean;
}

export interface TimerWheelOptions {
  /** Width of a slot and the loop's step (ms). Default 2. */
  resolutionMs?: number;
  /** Number of slots, rounded up to a power of two. Default 4096. */
  slots?: number;
  /** Clock (tests pass a fake one). */
  now?: () => number;
}

export class TimerWheel {
  private readonly res: number;
  private readonly mask: number;
  private slots: WheelEntry[][];
  private spare: WheelEntry[] = [];
  /** Absolute index of the first slot not completely processed yet. */
  private cursor: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private count = 0;
  /** Firings so far (the fleet's ticks). */
  fired = 0;
  /** Largest lateness seen (ms): how far behind the loop fell. */
  maxLagMs = 0;

  constructor(o: TimerWheelOptions = {}) {
    this.res = o.resolutionMs ?? 2;
    let n = 1;
    while (n < (o.slots ?? 4096)) n <<= 1;
    this.mask = n - 1;
    this.slots = Array.from({ length: n }, () => []);
    this.now = o.now ?? (() => performance.now());
    this.cursor = Math.floor(this.now() / this.res);
  }

  get size(): number {
    return this.count;
  }

  /** Fires `fire` every periodMs from firstDue (default: now + period). */
  add(fire: () => void, periodMs: number, firstDue = this.now() + periodMs): WheelEntry {
    if (!(periodMs > 0) || !Number.isFinite(periodMs)) throw new Error(`period must be a positive number of ms, not ${periodMs}`);
    const e: WheelEntry = { due: firstDue, period: periodMs, fire, active: true };
    this.insert(e);
    this.count++;
    return e;
  }

  /** Stops an entry (dropped from its slot lazily). */
  remove(e: WheelEntry): void {
    if (!e.active) return;
    e.active = false;
    this.count--;
  }

  /** A new period; the next firing is one new period after the last one. */
  setPeriod(e: WheelEntry, periodMs: number): void {
    if (!(periodMs > 0) || !Number.isFinite(periodMs)) throw new Error(`period must be a positive number of ms, not ${periodMs}`);
    e.due += periodMs - e.period;
    e.period = periodMs;
  }

  private insert(e: WheelEntry): void {
    // An entry due in a slot already passed goes to the current one: it fires on the next pass.
    const abs = Math.max(Math.floor(e.due / this.res), this.cursor);
    this.slots[abs & this.mask]!.push(e);
  }

  /** Fires everything due up to `now`. The loop calls it; tests call it with a fake clock. */
  advance(now = this.now()): void {
    const target = Math.floor(now / this.res);
    // More than a whole turn behind: every slot is visited once (entries keep their own due times).
    const first = Math.max(this.cursor, target - this.mask);
    for (let abs = first; abs <= target; abs++) {
      const idx = abs & this.mask;
      const list = this.slots[idx]!;
      if (list.length === 0) continue;
      this.slots[idx] = this.spare;
      this.cursor = abs; // re-inserted entries due in this slot go back into it
      for (let i = 0; i < list.length; i++) {
        const e = list[i]!;
        if (!e.active) continue;
        if (e.due <= now) {
          const lag = now - e.due;
          if (lag > this.maxLagMs) this.maxLagMs = lag;
          // Several firings when the period is shorter than the time since the last pass.
          while (e.due <= now && e.active) {
            e.due += e.period;
            this.fired++;
            e.fire();
          }
          if (!e.active) continue;
        }
        this.insert(e);
      }
      list.length = 0;
      this.spare = list;
    }
    // The current slot is kept: entries due later within it fire on the next pass.
    this.cursor = target;
  }

  start(): void {
    if (this.timer) return;
    this.cursor = Math.min(this.cursor, Math.floor(this.now() / this.res));
    const loop = () => {
      this.advance();
      this.timer = setTimeout(loop, this.res);
    };
    this.timer = setTimeout(loop, this.res);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
