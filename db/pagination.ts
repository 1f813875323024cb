// Keyset pagination: the cursor is the opaque, URL-safe encoding of the last row's sort key.
// No OFFSET: page N costs the same as page 1 on a table of millions.
import { ValidationError } from '../domain/errors';
import { isStorableText } from '../domain/json-limits';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * What each position of a sort key holds. A cursor is client input: one that decodes but was not
 * ours (a number where a timestamp goes, a day 31 of February) must be a 400, not a Postgres error.
 */
export type CursorPart = 'timestamp' | 'string' | 'integer';
type PartType<P extends CursorPart> = P extends 'integer' ? number : string;
export type CursorKey<S extends readonly CursorPart[]> = { [K in keyof S]: PartType<S[K]> };

/** Longest string a cursor position carries (IDs, Homie IDs). */
const MAX_CURSOR_STRING = 200;

/** A timestamptz as Postgres prints it (`at::text`) or as toISOString() writes it. */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(?::?\d{2})?)$/;

function isTimestamp(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = TIMESTAMP.exec(v);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const offset = m[8]!;
  if (offset !== 'Z' && Number(offset.slice(1, 3)) > 15) return false;
  // Fields that exist on the calendar (a Date would roll 02-31 over to March).
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return y >= 1 && t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
}

const PART_OK: Record<CursorPart, (v: unknown) => boolean> = {
  timestamp: isTimestamp,
  string: (v) => typeof v === 'string' && v.length <= MAX_CURSOR_STRING && isStorableText(v),
  integer: (v) => typeof v === 'number' && Number.isSafeInteger(v),
};

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The sort key a cursor carries, each position checked against `shape`; else a 400 naming `cursor`. */
export function decodeCursor<const S extends readonly CursorPart[]>(cursor: string, shape: S): CursorKey<S> {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = null;
  }
  if (Array.isArray(key) && key.length === shape.length && shape.every((part, i) => PART_OK[part](key[i]))) return key as CursorKey<S>;
  throw new ValidationError('cursor: not a cursor this API returned', [{ path: 'cursor', message: 'not a cursor this API returned' }]);
}

/** Fetches limit+1 rows to know whether a next page exists without counting. */
export function toPage<R, T>(rows: R[], limit: number, map: (r: R) => T, key: (r: R) => unknown[]): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items: items.map(map), nextCursor: more ? encodeCursor(key(items[items.length - 1]!)) : null };
}
