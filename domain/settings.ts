// Device settings as the platform manages them: JSON merge patches (RFC 7386) on the desired
// settings, and what of them a device has not applied yet.
import type { Settings } from './device-messages';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge recursively, null removes a member, anything else replaces. */
export function mergePatch(target: Settings, patch: Record<string, unknown>): Settings {
  const out: Settings = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObject(v)) out[k] = mergePatch(isObject(out[k]) ? (out[k] as Settings) : {}, v);
    else out[k] = v;
  }
  return out;
}

export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k], b[k]));
  }
  return false;
}

/**
 * The desired settings the device does not have, with the values it should take. Settings only
 * the device knows (set on its local admin page, say) are not pending: the platform never asked.
 */
export function pendingSettings(desired: Settings, reported: Settings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(desired)) if (!sameJson(v, reported[k])) out[k] = v;
  return out;
}
