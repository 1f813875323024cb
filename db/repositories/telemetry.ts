// The telemetry history: every value a device published, appended by the bridge in batches and
// read by the API (raw points, or time buckets for charts).
import type { Db } from '../knex';
import { ValidationError } from '../../domain/errors';
import { decodeCursor, toPage, type Page } from '../pagination';
import { numberArray, textArray, type Sql } from './sql';

/** One batch as columns (same length each): what one INSERT sends. */
export interface TelemetryColumns {
  deviceIds: string[];
  nodes: string[];
  properties: string[];
  /** Milliseconds since the epoch. */
  atMs: number[];
  values: string[];
  nums: (number | null)[];
}

export function emptyTelemetryColumns(): TelemetryColumns {
  return { deviceIds: [], nodes: [], properties: [], atMs: [], values: [], nums: [] };
}

const INSERT_TELEMETRY = `
  INSERT INTO telemetry (device_id, node, property, at, value, num)
  SELECT d, n, p, to_timestamp(ms / 1000.0), v, x
    FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::float8[]) AS u(d, n, p, ms, v, x)`;

/** Appends a batch in one statement; returns the rows written. */
export async function insertTelemetry(sql: Sql, c: TelemetryColumns): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(INSERT_TELEMETRY, [
    textArray(c.deviceIds),
    textArray(c.nodes),
    textArray(c.properties),
    numberArray(c.atMs),
    textArray(c.values),
    numberArray(c.nums),
  ]);
  return r.rowCount ?? c.deviceIds.length;
}

// Redelivery guard (bridge/redelivery.ts): the digests of the packet IDs a bridge session
// committed, written in the same transaction as the batch's rows and read back only for messages
// the broker marked DUP (sent again after a reconnect). Packet IDs are kept in blocks of 256 (row
// `block` = id >> 8, element (id & 255) + 1 of `digests`, NULL where nothing is recorded): a batch
// of 5,000 consecutive IDs updates ~20 rows, not 5,000.

export const PACKET_BLOCK = 256;

const RECORD_PACKETS = `
  INSERT INTO bridge_committed_packets AS t (client_id, block, digests)
  SELECT $1, u.b, u.d::int[] FROM unnest($2::int[], $3::text[]) AS u(b, d)
  ON CONFLICT (client_id, block) DO UPDATE SET digests = (
    SELECT array_agg(coalesce(x.n, x.o) ORDER BY x.i) FROM unnest(excluded.digests, t.digests) WITH ORDINALITY AS x(n, o, i))`;

/** Records committed packet IDs (each at most once per call) with their digests. */
export async function recordCommittedPackets(sql: Sql, clientId: string, packetIds: readonly number[], digests: readonly number[]): Promise<void> {
  if (packetIds.length === 0) return;
  const blocks = new Map<number, (number | null)[]>();
  for (let i = 0; i < packetIds.length; i++) {
    const b = packetIds[i]! >> 8;
    let d = blocks.get(b);
    if (!d) blocks.set(b, (d = new Array<number | null>(PACKET_BLOCK).fill(null)));
    d[packetIds[i]! & 0xff] = digests[i]!;
  }
  const ids: number[] = [];
  const arrays: string[] = [];
  for (const [b, d] of blocks) {
    ids.push(b);
    arrays.push(`{${d.map((x) => (x === null ? 'NULL' : String(x))).join(',')}}`);
  }
  await sql.query(RECORD_PACKETS, [clientId, `{${ids.join(',')}}`, textArray(arrays)]);
}

/** packet ID → digest of what was last committed under it, for the given IDs. */
export async function findCommittedPackets(sql: Sql, clientId: string, packetIds: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (packetIds.length === 0) return out;
  const blocks = [...new Set(packetIds.map((id) => id >> 8))];
  const r = await sql.query<{ block: number; digests: (number | null)[] }>(
    'SELECT block, digests FROM bridge_committed_packets WHERE client_id = $1 AND block = ANY ($2::int[])',
    [clientId, `{${blocks.join(',')}}`],
  );
  const byBlock = new Map(r.rows.map((row) => [row.block, row.digests]));
  for (const id of packetIds) {
    const d = byBlock.get(id >> 8)?.[id & 0xff];
    if (d !== null && d !== undefined) out.set(id, d);
  }
  return out;
}

export interface TelemetryPoint {
  node: string;
  property: string;
  at: string;
  value: string;
  num: number | null;
}

export interface TelemetryQuery {
  deviceId: string;
  node?: string;
  property?: string;
  /** ISO 8601 or Date; inclusive. */
  from?: string | Date;
  /** Exclusive. */
  to?: string | Date;
  limit: number;
  cursor?: string;
  /** Newest first (the default) or oldest first. */
  order?: 'desc' | 'asc';
  /** Only these properties (what the caller may see); absent: all. */
  only?: readonly { node: string; property: string }[];
}

/** Raw points of one device (optionally one node / property), newest first, keyset-paginated. */
export async function queryTelemetry(db: Db, q: TelemetryQuery): Promise<Page<TelemetryPoint>> {
  const order = q.order ?? 'desc';
  const cmp = order === 'desc' ? '<' : '>';
  const query = db('telemetry')
    .where('device_id', q.deviceId)
    .select('node', 'property', 'at', db.raw('at::text AS at_text'), 'value', 'num')
    .orderBy([
      { column: 'at', order },
      { column: 'node', order },
      { column: 'property', order },
    ])
    .limit(q.limit + 1);
  if (q.node) query.where('node', q.node);
  if (q.property) query.where('property', q.property);
  if (q.only) {
    if (q.only.length === 0) return { items: [], nextCursor: null };
    query.whereIn(['node', 'property'], q.only.map((p) => [p.node, p.property]));
  }
  if (q.from) query.where('at', '>=', new Date(q.from));
  if (q.to) query.where('at', '<', new Date(q.to));
  if (q.cursor) {
    const [at, node, property] = decodeCursor(q.cursor, ['timestamp', 'string', 'string'] as const);
    query.whereRaw(`(at, node, property) ${cmp} (?::timestamptz, ?, ?)`, [at, node, property]);
  }
  const rows: { node: string; property: string; at: Date; at_text: string; value: string; num: number | null }[] = await query;
  return toPage(
    rows,
    q.limit,
    (r) => ({ node: r.node, property: r.property, at: r.at.toISOString(), value: r.value, num: r.num }),
    // at_text keeps Postgres's microseconds, which a JS Date would round away.
    (r) => [r.at_text, r.node, r.property],
  );
}

export interface TelemetryBucket {
  /** Start of the bucket (ISO 8601). */
  bucket: string;
  avg: number | null;
  min: number | null;
  max: number | null;
  /** Points in the bucket (numeric or not). */
  count: number;
}

export interface BucketQuery {
  deviceId: string;
  node: string;
  property: string;
  from: string | Date;
  to: string | Date;
  /** Bucket width in seconds. */
  bucketSeconds: number;
}

/** Most buckets one query may return: a chart does not need more, and it bounds the work. */
export const MAX_BUCKETS = 10_000;

/**
 * Aggregates over `num` in fixed-width buckets (`date_bin`, aligned to the Unix epoch), oldest
 * first; buckets without points are left out.
 */
export async function telemetryBuckets(db: Db, q: BucketQuery): Promise<TelemetryBucket[]> {
  const from = new Date(q.from);
  const to = new Date(q.to);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) throw new ValidationError('from must be before to');
  if (!(q.bucketSeconds > 0)) throw new ValidationError('bucket must be a positive number of seconds');
  if ((to.getTime() - from.getTime()) / 1000 / q.bucketSeconds > MAX_BUCKETS) {
    throw new ValidationError(`at most ${MAX_BUCKETS} buckets per query: widen the bucket or narrow the range`);
  }
  const r = await db.raw<{ rows: { bucket: Date; avg: number | null; min: number | null; max: number | null; count: string }[] }>(
    `SELECT date_bin(make_interval(secs => ?), at, TIMESTAMPTZ '1970-01-01Z') AS bucket,
            avg(num) AS avg, min(num) AS min, max(num) AS max, count(*) AS count
       FROM telemetry
      WHERE device_id = ? AND node = ? AND property = ? AND at >= ? AND at < ?
      GROUP BY 1 ORDER BY 1`,
    [q.bucketSeconds, q.deviceId, q.node, q.property, from, to],
  );
  return r.rows.map((b) => ({ bucket: b.bucket.toISOString(), avg: b.avg, min: b.min, max: b.max, count: Number(b.count) }));
}
