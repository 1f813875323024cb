// Keyset pagination: the cursor is the opaque, URL-safe encoding of the last row's sort key.
// No OFFSET: page N costs the same as page 1 on a table of millions.
import { ValidationError } from '../domain/errors';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number): unknown[] {
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === 'string' || typeof k === 'number')) return key;
  } catch {
    // fall through
  }
  throw new ValidationError('cursor: not a cursor this API returned', [{ path: 'cursor', message: 'invalid cursor' }]);
}

/** Fetches limit+1 rows to know whether a next page exists without counting. */
export function toPage<R, T>(rows: R[], limit: number, map: (r: R) => T, key: (r: R) => unknown[]): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items: items.map(map), nextCursor: more ? encodeCursor(key(items[items.length - 1]!)) : null };
}
