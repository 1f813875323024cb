// Homie properties of each device: the self-description (node and property attributes) and the
// current value. The bridge writes them once per batch; the API lists them as "sensors".
import type { Db } from '../knex';
import { decodeValue, type HomieValue } from '../../domain/homie';
import { numberArray, textArray, type Sql } from './sql';

/** Current values of one batch (last value per property already chosen); null value = deleted. */
export interface CurrentValueColumns {
  deviceIds: string[];
  nodes: string[];
  properties: string[];
  values: (string | null)[];
  atMs: number[];
}

/**
 * Sets current values of existing rows (rows are created only by the bridge's admission, which
 * holds the per-device caps: bridge/property-caps.ts). A value older than the stored one is
 * ignored, so batches written concurrently (or by two bridges) never move a property back in time.
 */
export async function updateCurrentValues(sql: Sql, c: CurrentValueColumns): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `UPDATE device_properties AS t SET value = u.v, value_at = to_timestamp(u.ms / 1000.0)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[]) AS u(d, n, p, v, ms)
      WHERE t.device_id = u.d AND t.node = u.n AND t.property = u.p
        AND (t.value_at IS NULL OR to_timestamp(u.ms / 1000.0) >= t.value_at)`,
    [textArray(c.deviceIds), textArray(c.nodes), textArray(c.properties), textArray(c.values), numberArray(c.atMs)],
  );
  return r.rowCount ?? 0;
}

export interface PropertyKeyColumns {
  deviceIds: string[];
  nodes: string[];
  properties: string[];
}

/**
 * Creates the rows of properties a device announced (`<node>/$properties`) or described. New rows
 * take their node's `$name`/`$type` from the device's attributes (`<node>/$name`), which the same
 * batch wrote first, so the order in which a device's retained topics arrive does not matter.
 */
export async function ensureProperties(sql: Sql, k: PropertyKeyColumns): Promise<number> {
  if (k.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `INSERT INTO device_properties (device_id, node, property, node_name, node_type)
     SELECT u.d, u.n, u.p, dv.attributes ->> (u.n || '/$name'), dv.attributes ->> (u.n || '/$type')
       FROM unnest($1::text[], $2::text[], $3::text[]) AS u(d, n, p)
       JOIN devices dv ON dv.id = u.d
     ON CONFLICT (device_id, node, property) DO NOTHING`,
    [k.deviceIds, k.nodes, k.properties],
  );
  return r.rowCount ?? 0;
}

/** The stored property keys of these devices (what the bridge's caps count). */
export async function loadPropertyKeys(sql: Sql, deviceIds: string[]): Promise<PropertyKeyColumns> {
  const out: PropertyKeyColumns = { deviceIds: [], nodes: [], properties: [] };
  if (deviceIds.length === 0) return out;
  const r = await sql.query<{ device_id: string; node: string; property: string }>(
    'SELECT device_id, node, property FROM device_properties WHERE device_id = ANY ($1::text[])',
    [deviceIds],
  );
  for (const row of r.rows) {
    out.deviceIds.push(row.device_id);
    out.nodes.push(row.node);
    out.properties.push(row.property);
  }
  return out;
}

/** A device's announced lists as stored in its attributes: `$nodes` and `<node>/$properties`. */
export interface StoredAnnouncements {
  nodes: string | null;
  properties: Record<string, string>;
}

/**
 * Locks these devices' rows (in ID order, so two bridges admitting for the same devices queue
 * instead of deadlocking) until the transaction ends, and reads their announced lists.
 */
export async function lockAnnouncements(sql: Sql, deviceIds: string[]): Promise<Map<string, StoredAnnouncements>> {
  const out = new Map<string, StoredAnnouncements>();
  if (deviceIds.length === 0) return out;
  const r = await sql.query<{ id: string; nodes: string | null; properties: Record<string, string> | null }>(
    `SELECT d.id, d.attributes ->> '$nodes' AS nodes,
            (SELECT jsonb_object_agg(left(e.k, length(e.k) - length('/$properties')), e.v)
               FROM jsonb_each_text(d.attributes) AS e(k, v) WHERE right(e.k, 12) = '/$properties') AS properties
       FROM devices d WHERE d.id = ANY ($1::text[]) ORDER BY d.id FOR UPDATE OF d`,
    [deviceIds],
  );
  for (const row of r.rows) out.set(row.id, { nodes: row.nodes, properties: row.properties ?? {} });
  return out;
}

/**
 * Property attributes as a JSON patch per row: keys `name`, `datatype`, `format`, `unit`,
 * `settable`, `retained`; a key with null resets that attribute to Homie's default (its topic
 * was cleared). Keys not in the patch are left as they are.
 */
export interface PropertyPatchColumns extends PropertyKeyColumns {
  patches: string[];
  atMs: number[];
}

export async function describeProperties(sql: Sql, c: PropertyPatchColumns): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const has = (k: string) => `u.patch ? '${k}'`;
  const r = await sql.query(
    `UPDATE device_properties AS t SET
        name = CASE WHEN ${has('name')} THEN u.patch ->> 'name' ELSE t.name END,
        datatype = CASE WHEN ${has('datatype')} THEN coalesce(u.patch ->> 'datatype', 'string') ELSE t.datatype END,
        format = CASE WHEN ${has('format')} THEN u.patch ->> 'format' ELSE t.format END,
        unit = CASE WHEN ${has('unit')} THEN u.patch ->> 'unit' ELSE t.unit END,
        settable = CASE WHEN ${has('settable')} THEN coalesce((u.patch ->> 'settable')::boolean, false) ELSE t.settable END,
        retained = CASE WHEN ${has('retained')} THEN coalesce((u.patch ->> 'retained')::boolean, true) ELSE t.retained END,
        described_at = to_timestamp(u.ms / 1000.0)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::float8[]) AS u(d, n, p, patch, ms)
      WHERE t.device_id = u.d AND t.node = u.n AND t.property = u.p`,
    [c.deviceIds, c.nodes, c.properties, c.patches, c.atMs],
  );
  return r.rowCount ?? 0;
}

/** Node attributes (`$name`, `$type`) as a JSON patch `{name?, type?}` per node; they ride on each of its rows. */
export interface NodePatchColumns {
  deviceIds: string[];
  nodes: string[];
  patches: string[];
}

export async function describeNodes(sql: Sql, c: NodePatchColumns): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `UPDATE device_properties AS t SET
        node_name = CASE WHEN u.patch ? 'name' THEN u.patch ->> 'name' ELSE t.node_name END,
        node_type = CASE WHEN u.patch ? 'type' THEN u.patch ->> 'type' ELSE t.node_type END
       FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(d, n, patch)
      WHERE t.device_id = u.d AND t.node = u.n`,
    [c.deviceIds, c.nodes, c.patches],
  );
  return r.rowCount ?? 0;
}

/**
 * A device re-announced a node's `$properties` (or its `$nodes`): rows it no longer lists go.
 * `keep` is the list as announced (one text[] literal per row is avoided: comma-joined IDs).
 * `node` null means "the device's node list": rows of nodes not in `keep` go; a Homie 3 array
 * `name[]` keeps `name` and its elements `name_<i>`.
 */
export async function removeUnlisted(sql: Sql, c: { deviceIds: string[]; nodes: (string | null)[]; keep: string[] }): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `DELETE FROM device_properties AS t
      USING unnest($1::text[], $2::text[], $3::text[]) AS u(d, n, keep)
      WHERE t.device_id = u.d
        AND CASE WHEN u.n IS NULL THEN NOT (t.node = ANY (string_to_array(u.keep, ','))
                                            OR regexp_replace(t.node, '_[0-9]+$', '') || '[]' = ANY (string_to_array(u.keep, ','))
                                            OR t.node || '[]' = ANY (string_to_array(u.keep, ',')))
                 ELSE t.node = u.n AND NOT (t.property = ANY (string_to_array(u.keep, ','))) END`,
    [c.deviceIds, c.nodes, c.keep],
  );
  return r.rowCount ?? 0;
}

export interface Sensor {
  node: string;
  property: string;
  nodeName: string | null;
  nodeType: string | null;
  name: string | null;
  datatype: string;
  format: string | null;
  unit: string | null;
  settable: boolean;
  retained: boolean;
  /** The current value decoded by datatype (numbers, booleans); null when none was published. */
  value: HomieValue | null;
  /** The current value as published. */
  payload: string | null;
  updatedAt: string | null;
  describedAt: string;
}

interface PropertyRow {
  node: string;
  property: string;
  node_name: string | null;
  node_type: string | null;
  name: string | null;
  datatype: string;
  format: string | null;
  unit: string | null;
  settable: boolean;
  retained: boolean;
  value: string | null;
  value_at: Date | null;
  described_at: Date;
}

const COLUMNS = ['node', 'property', 'node_name', 'node_type', 'name', 'datatype', 'format', 'unit', 'settable', 'retained', 'value', 'value_at', 'described_at'];

function toSensor(r: PropertyRow): Sensor {
  return {
    node: r.node,
    property: r.property,
    nodeName: r.node_name,
    nodeType: r.node_type,
    name: r.name,
    datatype: r.datatype,
    format: r.format,
    unit: r.unit,
    settable: r.settable,
    retained: r.retained,
    value: r.value === null ? null : decodeValue(r.datatype, r.value),
    payload: r.value,
    updatedAt: r.value_at ? r.value_at.toISOString() : null,
    describedAt: r.described_at.toISOString(),
  };
}

/** Largest page of GET /devices/{id}/sensors. */
export const MAX_SENSORS_PAGE = 1_000;

/**
 * A device's properties with their current values, by node then property: a page of at most
 * `limit` after the key `after` (keyset, so a device with many rows costs one page per call).
 */
export async function listSensorPage(
  db: Db,
  deviceId: string,
  opts: { limit?: number; after?: { node: string; property: string } } = {},
): Promise<{ items: Sensor[]; next: { node: string; property: string } | null }> {
  const limit = Math.min(Math.max(1, opts.limit ?? MAX_SENSORS_PAGE), MAX_SENSORS_PAGE);
  const q = db('device_properties').where({ device_id: deviceId }).orderBy(['node', 'property']).select(COLUMNS).limit(limit + 1);
  if (opts.after) q.whereRaw('(node, property) > (?, ?)', [opts.after.node, opts.after.property]);
  const rows: PropertyRow[] = await q;
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return { items: page.map(toSensor), next: more && last ? { node: last.node, property: last.property } : null };
}

/** The first page of a device's sensors (at most MAX_SENSORS_PAGE). */
export async function listSensors(db: Db, deviceId: string): Promise<Sensor[]> {
  return (await listSensorPage(db, deviceId)).items;
}

/** One property (e.g. to check datatype and settable before a set), or null. */
export async function getSensor(db: Db, deviceId: string, node: string, property: string): Promise<Sensor | null> {
  const row: PropertyRow | undefined = await db('device_properties').where({ device_id: deviceId, node, property }).first(COLUMNS);
  return row ? toSensor(row) : null;
}

/** The (node, property) pairs a device has described, at most MAX_SENSORS_PAGE × 10 (the bridge's caps keep it far below). */
export async function describedProperties(db: Db, deviceId: string): Promise<{ node: string; property: string }[]> {
  return db('device_properties').where({ device_id: deviceId }).orderBy(['node', 'property']).limit(MAX_SENSORS_PAGE * 10).select('node', 'property');
}
