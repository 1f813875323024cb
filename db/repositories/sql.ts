// The bridge writes through a plain `pg` client (a pool or one checked-out client inside a
// transaction): one statement per batch, `$n` parameters and arrays, no query builder on the
// hot path. The API reads through knex (`Db`) like every other repository.
import type { QueryResult, QueryResultRow } from 'pg';

/** What `pg.Pool`, `pg.Client` and `pg.PoolClient` have in common. */
export interface Sql {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** Milliseconds since the epoch → timestamptz, in SQL: sent as float8 (cheaper than Date objects). */
export const msToTimestamp = (expr: string) => `to_timestamp(${expr} / 1000.0)`;

/** Postgres text and jsonb refuse U+0000; a device can still send it. */
export const hasNul = (s: string): boolean => s.indexOf('\u0000') !== -1;

/** A timestamptz as Postgres prints it (`at::text`): what keyset cursors carry, to the microsecond. */
const PG_TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)$/;
export const isTimestampText = (v: unknown): v is string => typeof v === 'string' && PG_TIMESTAMP_TEXT.test(v);

// Array parameters built as Postgres array literals directly: pg's generic serializer escapes
// every element with regular expressions (about three times slower).

/** A text[] literal (null → NULL). */
export function textArray(values: readonly (string | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (v.indexOf('"') === -1 && v.indexOf('\\') === -1) out += `"${v}"`;
    else out += `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  return `${out}}`;
}

/** A float8[] literal (null → NULL). */
export function numberArray(values: readonly (number | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    out += v === null || v === undefined ? 'NULL' : Number.isFinite(v) ? String(v) : 'NULL';
  }
  return `${out}}`;
}
