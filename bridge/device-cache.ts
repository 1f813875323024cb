// Which device IDs exist, cached: the bridge checks every message's device before it writes, with
// one query per batch for the IDs it has not seen (a miss is remembered for a short while, so a
// stream from an unknown device costs one lookup per interval, not one per message).
//
// With each device, the property rows it has stored (property-caps.ts): read from Postgres when
// the device is first seen, so the caps count what is stored (across restarts and bridges), and
// kept up to date by this bridge's admissions; forgotten when the device re-announces its lists.
import type { DeviceInfo } from '../db/repositories/device-state';
import type { PropertyKeyColumns } from '../db/repositories/device-properties';
import { PropertyInventory } from './property-caps';

export interface DeviceCacheOptions {
  negativeTtlMs?: number;
  maxEntries?: number;
  /** Bound on the property keys held for all devices together (then they are read again). */
  maxPropertyKeys?: number;
  now?: () => number;
  /** Reads the stored property keys of these devices (without it, inventories start empty). */
  loadProperties?: (ids: string[]) => Promise<PropertyKeyColumns>;
}

export class DeviceCache {
  private readonly known = new Map<string, DeviceInfo>();
  private readonly unknown = new Map<string, number>(); // id -> expiry (ms)
  private readonly inventories = new Map<string, PropertyInventory>();
  private inventoryKeys = 0;

  constructor(
    private readonly lookup: (ids: string[]) => Promise<DeviceInfo[]>,
    private readonly opts: DeviceCacheOptions = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** The device, null when it is known not to exist, undefined when not cached. */
  get(id: string): DeviceInfo | null | undefined {
    const d = this.known.get(id);
    if (d) return d;
    const until = this.unknown.get(id);
    if (until === undefined) return undefined;
    if (until > this.now()) return null;
    this.unknown.delete(id);
    return undefined;
  }

  /** The stored property rows of a known device (after resolve). */
  properties(id: string): PropertyInventory | undefined {
    return this.inventories.get(id);
  }

  /** Replaces a device's inventory (an admission read it from Postgres). */
  setProperties(id: string, inv: PropertyInventory): void {
    this.inventoryKeys += inv.size - (this.inventories.get(id)?.size ?? 0);
    this.inventories.set(id, inv);
  }

  /** Counts rows this bridge just created (the inventory is not read again for them). */
  noteAdded(id: string, node: string, property: string): void {
    const inv = this.inventories.get(id);
    if (!inv || inv.has(node, property)) return;
    inv.add(node, property);
    this.inventoryKeys++;
  }

  /** Looks up, in one query, the IDs that are not cached (and the stored properties of those without an inventory). */
  async resolve(ids: Iterable<string>): Promise<void> {
    const missing: string[] = [];
    const uninventoried: string[] = [];
    for (const id of ids) {
      const d = this.get(id);
      if (d === undefined) missing.push(id);
      else if (d !== null && !this.inventories.has(id)) uninventoried.push(id);
    }
    if (missing.length > 0) {
      const found = await this.lookup(missing);
      const max = this.opts.maxEntries ?? 2_000_000;
      if (this.known.size + found.length > max) this.known.clear(); // crude but bounded; it refills from Postgres
      if (this.unknown.size + missing.length > max) this.unknown.clear();
      for (const d of found) {
        this.known.set(d.id, d);
        uninventoried.push(d.id);
      }
      const until = this.now() + (this.opts.negativeTtlMs ?? 10_000);
      for (const id of missing) if (!this.known.has(id)) this.unknown.set(id, until);
    }
    if (uninventoried.length > 0) await this.loadInventories(uninventoried);
  }

  private async loadInventories(ids: string[]): Promise<void> {
    const at = this.now();
    const fresh = new Map(ids.map((id) => [id, new PropertyInventory(at)]));
    if (this.opts.loadProperties) {
      const k = await this.opts.loadProperties(ids);
      for (let i = 0; i < k.deviceIds.length; i++) fresh.get(k.deviceIds[i]!)?.add(k.nodes[i]!, k.properties[i]!);
    }
    let added = 0;
    for (const inv of fresh.values()) added += inv.size;
    if (this.inventoryKeys + added > (this.opts.maxPropertyKeys ?? 5_000_000)) this.forgetProperties();
    for (const [id, inv] of fresh) this.setProperties(id, inv);
  }

  /** Forgets the property inventories of these devices (or all): read again at their next message. */
  forgetProperties(ids?: Iterable<string>): void {
    if (!ids) {
      this.inventories.clear();
      this.inventoryKeys = 0;
      return;
    }
    for (const id of ids) {
      const inv = this.inventories.get(id);
      if (!inv) continue;
      this.inventoryKeys -= inv.size;
      this.inventories.delete(id);
    }
  }

  /** Forgets these devices (or everything): after a foreign-key error, a device may be gone. */
  forget(ids?: Iterable<string>): void {
    if (!ids) {
      this.known.clear();
      this.unknown.clear();
      this.forgetProperties();
      return;
    }
    const list = [...ids];
    for (const id of list) {
      this.known.delete(id);
      this.unknown.delete(id);
    }
    this.forgetProperties(list);
  }

  get size(): number {
    return this.known.size;
  }
}
