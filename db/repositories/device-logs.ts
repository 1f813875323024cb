// Device logs (`$rdm/log`): appended by the bridge in batches, listed by the API, pruned by age
// and by a per-device cap in bounded deletes.
import type { Db } from '../knex';
import type { LogLevel } from '../../domain/device-messages';
import { decodeCursor, toPage, type Page } from '../pagination';
import type { Sql } from './sql';

export interface LogColumns {
  deviceIds: string[];
  /** When the platform received it (ms since the epoch). */
  atMs: number[];
  /** The device's own clock (ISO 8601), when it gave one. */
  deviceTimes: (string | null)[];
  levels: string[];
  messages: string[];
  /** JSON objects, or null. */
  fields: (string | null)[];
}

export function emptyLogColumns(): LogColumns {
  return { deviceIds: [], atMs: [], deviceTimes: [], levels: [], messages: [], fields: [] };
}

export async function insertLogs(sql: Sql, c: LogColumns): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `INSERT INTO device_logs (device_id, at, device_time, level, message, fields)
     SELECT d, to_timestamp(ms / 1000.0), dt, l, m, f
       FROM unnest($1::text[], $2::float8[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[]) AS u(d, ms, dt, l, m, f)`,
    [c.deviceIds, c.atMs, c.deviceTimes, c.levels, c.messages, c.fields],
  );
  return r.rowCount ?? 0;
}

export interface DeviceLog {
  id: string;
  deviceId: string;
  at: string;
  deviceTime: string | null;
  level: LogLevel;
  message: string;
  fields: Record<string, unknown> | null;
}

export interface LogQuery {
  deviceId: string;
  /** This level and above (debug < info < warn < error). */
  minLevel?: LogLevel;
  from?: string | Date;
  to?: string | Date;
  limit: number;
  cursor?: string;
}

const LEVELS_FROM: Record<LogLevel, LogLevel[]> = {
  debug: ['debug', 'info', 'warn', 'error'],
  info: ['info', 'warn', 'error'],
  warn: ['warn', 'error'],
  error: ['error'],
};

/** A device's logs, newest first. */
export async function listLogs(db: Db, q: LogQuery): Promise<Page<DeviceLog>> {
  const query = db('device_logs')
    .where('device_id', q.deviceId)
    .orderBy([
      { column: 'at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(q.limit + 1)
    .select('id', 'device_id', 'at', db.raw('at::text AS at_text'), 'device_time', 'level', 'message', 'fields');
  if (q.minLevel && q.minLevel !== 'debug') query.whereIn('level', LEVELS_FROM[q.minLevel]);
  if (q.from) query.where('at', '>=', new Date(q.from));
  if (q.to) query.where('at', '<', new Date(q.to));
  if (q.cursor) {
    const [at, id] = decodeCursor(q.cursor, ['timestamp', 'integer'] as const);
    query.whereRaw('(at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows = await query;
  return toPage(
    rows,
    q.limit,
    (r) => ({
      id: String(r.id),
      deviceId: r.device_id,
      at: r.at.toISOString(),
      deviceTime: r.device_time ? r.device_time.toISOString() : null,
      level: r.level,
      message: r.message,
      fields: r.fields,
    }),
    (r) => [r.at_text, Number(r.id)],
  );
}

export interface PruneResult {
  byAge: number;
  byCap: number;
}

export interface PruneOptions {
  /** Delete logs received before this time. */
  before: Date;
  /** Keep at most this many (the newest) per device. */
  perDevice: number;
  /** Only these devices are checked against the cap (those that logged lately); all when absent. */
  deviceIds?: string[];
  /** Rows per DELETE statement: each one is short, so ingest never waits long on it. */
  chunk?: number;
  /** Called between statements (e.g. a short sleep); returning false stops early. */
  between?: () => Promise<boolean>;
}

/** Retention: by age, then by the per-device cap, in bounded deletes. */
export async function pruneLogs(sql: Sql, o: PruneOptions): Promise<PruneResult> {
  const chunk = o.chunk ?? 5_000;
  const between = o.between ?? (async () => true);
  const result: PruneResult = { byAge: 0, byCap: 0 };
  for (;;) {
    const r = await sql.query(
      'DELETE FROM device_logs WHERE id IN (SELECT id FROM device_logs WHERE at < $1 ORDER BY at LIMIT $2)',
      [o.before, chunk],
    );
    result.byAge += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < chunk || !(await between())) break;
  }
  const over = o.deviceIds
    ? o.deviceIds.length === 0
      ? { rows: [] }
      : await sql.query<{ device_id: string }>(
          'SELECT device_id FROM device_logs WHERE device_id = ANY ($1::text[]) GROUP BY device_id HAVING count(*) > $2',
          [o.deviceIds, o.perDevice],
        )
    : await sql.query<{ device_id: string }>('SELECT device_id FROM device_logs GROUP BY device_id HAVING count(*) > $1', [o.perDevice]);
  for (const { device_id } of over.rows) {
    for (;;) {
      const r = await sql.query(
        `DELETE FROM device_logs WHERE id IN (
           SELECT id FROM device_logs WHERE device_id = $1 ORDER BY at DESC, id DESC OFFSET $2 LIMIT $3)`,
        [device_id, o.perDevice, chunk],
      );
      result.byCap += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < chunk) break;
      if (!(await between())) return result;
    }
    if (!(await between())) break;
  }
  return result;
}
