// The bridge writes through a plain `pg` client (a pool or one checked-out client inside a
// transaction): one statement per batch, `$n` parameters and arrays, no query builder on the
// hot path. The API reads through knex (`Db`) like every other repository.
import type { QueryResult, QueryResultRow } from 'pg';

/** What `pg.Pool`, `pg.Client` and `pg.PoolClient` have in common. */
export interface Sql {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

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
