// What Postgres can store, and how big a JSON document from a client may be. Checked at the API
// edge so that bad input is a 400 naming the field, never a 500 (or a retry loop) later.

/**
 * Characters Postgres text and jsonb cannot store: U+0000, and lone UTF-16 surrogates (jsonb
 * refuses their escapes; text would silently turn them into U+FFFD). With the `u` flag a valid
 * surrogate pair is one code point, so only unpaired halves match.
 */
// eslint-disable-next-line no-control-regex -- matching U+0000 is the point
export const UNSTORABLE_CHAR = /[\u0000\uD800-\uDFFF]/u;
/**
 * The NUL half of the rule as a whole-string pattern, for schemas and the OpenAPI document
 * (fuzzers' regex engines cannot use a surrogate range; the schemas check those separately).
 */
// eslint-disable-next-line no-control-regex -- matching U+0000 is the point
export const NO_NUL_TEXT = /^[^\u0000]*$/;

export const isStorableText = (s: string): boolean => !UNSTORABLE_CHAR.test(s);

export interface JsonLimits {
  /** Nesting of objects and arrays: 1 for `{"a":1}`. */
  maxDepth: number;
  /** Size of the document as JSON, in UTF-8 bytes. */
  maxBytes: number;
}

/** A configuration document or a command's arguments: deep enough for any real settings tree. */
export const JSON_DOCUMENT_LIMITS: JsonLimits = { maxDepth: 32, maxBytes: 64 * 1024 };

export interface JsonProblem {
  /** Path inside the document, e.g. ['wifi', 'ssid'] or ['list', 3]. */
  path: (string | number)[];
  message: string;
}

/**
 * The first reason `value` cannot be stored as given, or null. Iterative (an explicit stack), so a
 * document nested thousands deep is refused, not a stack overflow; depth is checked before size so
 * JSON.stringify only ever sees a shallow document.
 */
export function jsonProblem(value: unknown, limits: JsonLimits = JSON_DOCUMENT_LIMITS): JsonProblem | null {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { path, message: 'must not contain U+0000 or unpaired surrogates' };
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path, message: 'must be a finite number' };
    } else if (v !== null && typeof v === 'object') {
      // A container at path length n is nested n+1 deep.
      if (path.length + 1 > limits.maxDepth) return { path, message: `must be nested at most ${limits.maxDepth} deep` };
      if (Array.isArray(v)) v.forEach((item, i) => stack.push({ v: item, path: [...path, i] }));
      else
        for (const [k, item] of Object.entries(v)) {
          if (!isStorableText(k)) return { path: [...path, k], message: 'names must not contain U+0000 or unpaired surrogates' };
          stack.push({ v: item, path: [...path, k] });
        }
    }
  }
  const bytes = new TextEncoder().encode(JSON.stringify(value) ?? '').length;
  if (bytes > limits.maxBytes) return { path: [], message: `must be at most ${limits.maxBytes} bytes as JSON (is ${bytes})` };
  return null;
}
