// Which device IDs exist, cached: the bridge checks every message's device before it writes, with
// one query per batch for the IDs it has not seen (a miss is remembered for a short while, so a
// stream from an unknown device costs one lookup per interval, not one per message).
import type { DeviceInfo } from '../db/repositories/device-state';

export class DeviceCache {
  private readonly known = new Map<string, DeviceInfo>();
  private readonly unknown = new Map<string, number>(); // id -> expiry (ms)

  constructor(
    private readonly lookup: (ids: string[]) => Promise<DeviceInfo[]>,
    private readonly opts: { negativeTtlMs?: number; maxEntries?: number; now?: () => number } = {},
  ) {}

  /** The device, null when it is known not to exist, undefined when not cached. */
  get(id: string): DeviceInfo | null | undefined {
    const d = this.known.get(id);
    if (d) return d;
    const until = this.unknown.get(id);
    if (until === undefined) return undefined;
    if (until > (this.opts.now ?? Date.now)()) return null;
    this.unknown.delete(id);
    return undefined;
  }

  /** Looks up, in one query, the IDs that are not cached. */
  async resolve(ids: Iterable<string>): Promise<void> {
    const missing: string[] = [];
    for (const id of ids) if (this.get(id) === undefined) missing.push(id);
    if (missing.length === 0) return;
    const found = await this.lookup(missing);
    const max = this.opts.maxEntries ?? 2_000_000;
    if (this.known.size + found.length > max) this.known.clear(); // crude but bounded; it refills from Postgres
    if (this.unknown.size + missing.length > max) this.unknown.clear();
    for (const d of found) this.known.set(d.id, d);
    const until = (this.opts.now ?? Date.now)() + (this.opts.negativeTtlMs ?? 10_000);
    for (const id of missing) if (!this.known.has(id)) this.unknown.set(id, until);
  }

  /** Forgets these devices (or everything): after a foreign-key error, a device may be gone. */
  forget(ids?: Iterable<string>): void {
    if (!ids) {
      this.known.clear();
      this.unknown.clear();
      return;
    }
    for (const id of ids) {
      this.known.delete(id);
      this.unknown.delete(id);
    }
  }

  get size(): number {
    return this.known.size;
  }
}
