// What devices say about themselves on the `devices` row: Homie `$state` (and online), last seen,
// `$homie`, `$name`, `$fw/version`, and every other device attribute in `attributes`. The bridge
// writes at most one UPDATE per device per batch through `applyDeviceUpdates`.
import type { Db } from '../knex';
import type { Sql } from './sql';

/**
 * One row per device (IDs sorted, so concurrent batches lock rows in the same order).
 * - `seenMs`: last message time, or null to leave last_seen_at alone.
 * - `states`/`stateMs`/`online`: the last `$state` of the batch, or null.
 * - `patches`: JSON `{homie_version?, name?, firmware_version?, attributes?: {key: value|null}}` or
 *   null; a null value clears a column or removes an attribute (its topic was cleared).
 */
export interface DeviceUpdateColumns {
  deviceIds: string[];
  seenMs: (number | null)[];
  states: (string | null)[];
  stateMs: (number | null)[];
  online: (boolean | null)[];
  patches: (string | null)[];
  /** Attributes one device may have stored: new keys beyond it are refused (stored ones still change or go). */
  maxAttributes: number;
}

export interface DeviceUpdateResult {
  rows: number;
  /** Attributes refused because their device was at the cap, and one such device (for the log). */
  refusedAttributes: number;
  refusedExample: string | null;
}

/**
 * Applies a batch of device updates. A `$state` older than the last applied change is ignored
 * (batches may commit out of order), and last_seen_at never moves back.
 */
export async function applyDeviceUpdates(sql: Sql, c: DeviceUpdateColumns): Promise<DeviceUpdateResult> {
  if (c.deviceIds.length === 0) return { rows: 0, refusedAttributes: 0, refusedExample: null };
  const fresh = `(u.state IS NOT NULL AND (d.state_changed_at IS NULL OR d.state_changed_at <= to_timestamp(u.sms / 1000.0)))`;
  const col = (name: string) => `${name} = CASE WHEN u.patch ? '${name}' THEN u.patch ->> '${name}' ELSE d.${name} END`;
  // A patch's removals and its changes to stored keys always apply; its new keys fill the room
  // left under the cap, in key order (deterministic whatever batches the messages came in).
  const patch = `(u.patch -> 'attributes')`;
  const isOld = `(d.attributes ? e.k OR e.v = 'null'::jsonb)`;
  const room = `($7 - (SELECT count(*) FROM jsonb_object_keys(d.attributes))
                   + (SELECT count(*) FROM jsonb_each(${patch}) AS r(k, v) WHERE r.v = 'null'::jsonb AND d.attributes ? r.k))`;
  const admitted = `(SELECT coalesce(jsonb_object_agg(x.k, x.v), '{}'::jsonb) FROM (
                       SELECT e.k, e.v, ${isOld} AS old, row_number() OVER (PARTITION BY ${isOld} ORDER BY e.k) AS rn
                         FROM jsonb_each(${patch}) AS e(k, v)) AS x
                     WHERE x.old OR x.rn <= ${room})`;
  const r = await sql.query<{ refused: number }>(
    `UPDATE devices AS d SET
        last_seen_at = CASE WHEN u.seen IS NULL THEN d.last_seen_at
                            ELSE greatest(d.last_seen_at, to_timestamp(u.seen / 1000.0)) END,
        state_changed_at = CASE WHEN ${fresh} AND d.homie_state IS DISTINCT FROM u.state THEN to_timestamp(u.sms / 1000.0)
                                ELSE d.state_changed_at END,
        homie_state = CASE WHEN ${fresh} THEN u.state ELSE d.homie_state END,
        online = CASE WHEN ${fresh} THEN u.online ELSE d.online END,
        ${col('homie_version')},
        ${col('name')},
        ${col('firmware_version')},
        attributes = CASE WHEN u.patch IS NULL OR NOT u.patch ? 'attributes' THEN d.attributes
                          ELSE jsonb_strip_nulls(d.attributes || ${admitted}) END
       FROM unnest($1::text[], $2::float8[], $3::text[], $4::float8[], $5::bool[], $6::jsonb[]) AS u(id, seen, state, sms, online, patch)
      WHERE d.id = u.id
      RETURNING d.id, (SELECT count(*)::int FROM jsonb_each(u.patch -> 'attributes') AS e(k, v) WHERE v <> 'null'::jsonb AND NOT d.attributes ? k) AS refused`,
    [c.deviceIds, c.seenMs, c.states, c.stateMs, c.online, c.patches, c.maxAttributes],
  );
  let refusedAttributes = 0;
  let refusedExample: string | null = null;
  for (const row of r.rows as { id: string; refused: number }[]) {
    if (row.refused > 0) {
      refusedAttributes += row.refused;
      refusedExample ??= row.id;
    }
  }
  return { rows: r.rowCount ?? 0, refusedAttributes, refusedExample };
}

export interface DeviceInfo {
  id: string;
  model: string | null;
  companyId: string | null;
}

/** Which of these devices exist (with what alert-rule scopes need); one query for a whole batch. */
export async function findDevices(sql: Sql, ids: string[]): Promise<DeviceInfo[]> {
  if (ids.length === 0) return [];
  const r = await sql.query<{ id: string; model: string | null; company_id: string | null }>(
    'SELECT id, model, company_id FROM devices WHERE id = ANY ($1::text[])',
    [ids],
  );
  return r.rows.map((row) => ({ id: row.id, model: row.model, companyId: row.company_id }));
}

/** Devices whose last `$state` is a connected one. */
export async function countOnline(sql: Sql): Promise<number> {
  const r = await sql.query<{ n: string }>('SELECT count(*) AS n FROM devices WHERE online');
  return Number(r.rows[0]!.n);
}

export interface DevicePresence {
  companyId: string | null;
  ownerId: string | null;
  model: string | null;
  online: boolean;
  homieState: string | null;
  homieVersion: string | null;
  name: string | null;
  firmwareVersion: string | null;
  lastSeenAt: string | null;
  stateChangedAt: string | null;
  attributes: Record<string, string>;
}

/** The Homie side of one device (for the API's device page), or null when there is no such device. */
export async function getDevicePresence(db: Db, id: string): Promise<DevicePresence | null> {
  const r = await db('devices')
    .where({ id })
    .first('company_id', 'owner_id', 'model', 'online', 'homie_state', 'homie_version', 'name', 'firmware_version', 'last_seen_at', 'state_changed_at', 'attributes');
  if (!r) return null;
  return {
    companyId: r.company_id,
    ownerId: r.owner_id,
    model: r.model,
    online: r.online,
    homieState: r.homie_state,
    homieVersion: r.homie_version,
    name: r.name,
    firmwareVersion: r.firmware_version,
    lastSeenAt: r.last_seen_at ? r.last_seen_at.toISOString() : null,
    stateChangedAt: r.state_changed_at ? r.state_changed_at.toISOString() : null,
    attributes: r.attributes,
  };
}
