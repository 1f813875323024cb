// Creates the property rows a batch would add, within the caps (property-caps.ts), in a short
// transaction of its own before the batch is planned: the devices' rows are locked (in ID order)
// and what they have stored and announced is read from Postgres there, so two bridges, or one
// that restarted, count the same rows. Only batches with property keys the cache does not know
// come here (a device's first messages, or one publishing new topics).
import type pg from 'pg';
import { ensureProperties, loadPropertyKeys, lockAnnouncements, type PropertyKeyColumns } from '../db/repositories/device-properties';
import type { DeviceCache } from './device-cache';
import { overlay, PropertyInventory, splitList, type Announced, type PropertyCaps, type Refusal } from './property-caps';

export interface AdmissionRequest {
  /** New keys (device, node, property), deduplicated. */
  keys: PropertyKeyColumns;
  /** Lists announced in this batch (they are written after the admission): per device `$nodes`, per device+node `$properties`; null = cleared. */
  nodeLists: Map<string, string[] | null>;
  propertyLists: Map<string, Map<string, string[] | null>>;
}

/** Key → why it was refused; keys not in the map were admitted (or already stored). */
export type Admission = (req: AdmissionRequest) => Promise<Map<string, Refusal>>;

export const keyOf = (d: string, n: string, p: string) => `${d}\u0000${n}\u0000${p}`;

export function storedAnnounced(s: { nodes: string | null; properties: Record<string, string> } | undefined): Announced {
  const properties = new Map<string, string[]>();
  for (const [n, list] of Object.entries(s?.properties ?? {})) {
    const ids = splitList(list);
    if (ids) properties.set(n, ids.map((id) => (id.endsWith('[]') ? id.slice(0, -2) : id)));
  }
  return { nodes: splitList(s?.nodes), properties };
}

export function createAdmission(pool: pg.Pool, devices: DeviceCache, caps: () => PropertyCaps, now: () => number): Admission {
  return async (req) => {
    const refused = new Map<string, Refusal>();
    const ids = [...new Set(req.keys.deviceIds)].sort();
    if (ids.length === 0) return refused;
    const client = await pool.connect();
    const inventories = new Map<string, PropertyInventory>();
    try {
      await client.query('BEGIN');
      const announced = await lockAnnouncements(client, ids);
      const stored = await loadPropertyKeys(client, ids);
      const at = now();
      for (const id of ids) inventories.set(id, new PropertyInventory(at, storedAnnounced(announced.get(id))));
      for (let i = 0; i < stored.deviceIds.length; i++) inventories.get(stored.deviceIds[i]!)!.add(stored.nodes[i]!, stored.properties[i]!);
      for (const [id, inv] of inventories) inv.retainListed(req.nodeLists.get(id), req.propertyLists.get(id));
      const add: PropertyKeyColumns = { deviceIds: [], nodes: [], properties: [] };
      const c = caps();
      for (let i = 0; i < req.keys.deviceIds.length; i++) {
        const d = req.keys.deviceIds[i]!;
        const n = req.keys.nodes[i]!;
        const p = req.keys.properties[i]!;
        const inv = inventories.get(d);
        if (!inv) continue; // the device is gone: its messages fail on the foreign key and are looked up again
        if (inv.has(n, p)) continue;
        const lists = overlay(inv.announced, req.nodeLists.get(d), req.propertyLists.get(d));
        const why = inv.admit(n, p, lists, c);
        if (why) refused.set(keyOf(d, n, p), why);
        else {
          add.deviceIds.push(d);
          add.nodes.push(n);
          add.properties.push(p);
        }
      }
      await ensureProperties(client, add);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      throw err;
    }
    client.release();
    for (const [id, inv] of inventories) devices.setProperties(id, inv);
    return refused;
  };
}
