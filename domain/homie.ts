// The Homie convention's payload rules (https://homieiot.github.io, 4.0 and 3.0.1): device states,
// datatypes and formats, and turning a value into its payload and back. Shared by the firmware,
// the bridge and the API so the three agree on what a valid value is.

export const DEVICE_STATES = ['init', 'ready', 'disconnected', 'sleeping', 'lost', 'alert'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];
export function isDeviceState(value: string): value is DeviceState {
  return (DEVICE_STATES as readonly string[]).includes(value);
}
/** States in which the device is connected and reachable. `alert` is connected but unwell. */
export function isOnlineState(state: DeviceState): boolean {
  return state === 'init' || state === 'ready' || state === 'alert';
}

export const DATATYPES = ['integer', 'float', 'boolean', 'string', 'enum', 'color', 'datetime', 'duration'] as const;
export type Datatype = (typeof DATATYPES)[number];
export function isDatatype(value: string): value is Datatype {
  return (DATATYPES as readonly string[]).includes(value);
}

/** A property as its `$`-attributes describe it. Homie's defaults: string, not settable, retained. */
export interface PropertySpec {
  datatype: Datatype;
  format?: string | null;
  unit?: string | null;
  settable?: boolean;
  retained?: boolean;
}

export type HomieValue = number | boolean | string;

export type ValueCheck = { ok: true; payload: string; value: HomieValue } | { ok: false; reason: string };

const INTEGER = /^-?\d+$/;
const FLOAT = /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const ISO8601_DURATION = /^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;

/** `min:max` of an integer/float format; either side may be empty. */
function range(format: string | null | undefined): { min?: number; max?: number } {
  if (!format) return {};
  const m = /^(-?[\d.eE+-]*):(-?[\d.eE+-]*)$/.exec(format.trim());
  if (!m) return {};
  const min = m[1] === '' ? undefined : Number(m[1]);
  const max = m[2] === '' ? undefined : Number(m[2]);
  return { min: Number.isFinite(min) ? min : undefined, max: Number.isFinite(max) ? max : undefined };
}

function checkRange(n: number, format: string | null | undefined): string | null {
  const { min, max } = range(format);
  if (min !== undefined && n < min) return `must be at least ${min}`;
  if (max !== undefined && n > max) return `must be at most ${max}`;
  return null;
}

function checkColor(text: string, format: string | null | undefined): ValueCheck {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 3 || parts.some((p) => !INTEGER.test(p))) return { ok: false, reason: 'a color is three integers "a,b,c"' };
  const n = parts.map(Number);
  const limits = format === 'hsv' ? [360, 100, 100] : [255, 255, 255];
  if (n.some((v, i) => v < 0 || v > limits[i]!)) return { ok: false, reason: `out of range for ${format ?? 'rgb'}` };
  const payload = n.join(',');
  return { ok: true, payload, value: payload };
}

/**
 * Checks a value a caller wants to set (a JSON value from the API, or a payload string) against
 * the property's datatype and format, and gives the payload to publish. Numbers may come as JSON
 * numbers or numeric strings, booleans as JSON booleans or "true"/"false".
 */
export function encodeValue(spec: PropertySpec, input: unknown): ValueCheck {
  const fmt = spec.format ?? null;
  switch (spec.datatype) {
    case 'integer': {
      const n = typeof input === 'number' ? input : typeof input === 'string' && INTEGER.test(input.trim()) ? Number(input) : NaN;
      if (!Number.isSafeInteger(n)) return { ok: false, reason: 'must be an integer' };
      const r = checkRange(n, fmt);
      return r ? { ok: false, reason: r } : { ok: true, payload: String(n), value: n };
    }
    case 'float': {
      const n = typeof input === 'number' ? input : typeof input === 'string' && FLOAT.test(input.trim()) ? Number(input) : NaN;
      if (!Number.isFinite(n)) return { ok: false, reason: 'must be a number' };
      const r = checkRange(n, fmt);
      return r ? { ok: false, reason: r } : { ok: true, payload: String(n), value: n };
    }
    case 'boolean': {
      if (input === true || input === 'true') return { ok: true, payload: 'true', value: true };
      if (input === false || input === 'false') return { ok: true, payload: 'false', value: false };
      return { ok: false, reason: 'must be true or false' };
    }
    case 'enum': {
      const options = (fmt ?? '').split(',');
      if (typeof input !== 'string' || !options.includes(input)) return { ok: false, reason: `must be one of: ${options.join(', ')}` };
      return { ok: true, payload: input, value: input };
    }
    case 'color':
      return typeof input === 'string' ? checkColor(input, fmt) : { ok: false, reason: 'a color is a string "a,b,c"' };
    case 'datetime': {
      if (typeof input !== 'string' || Number.isNaN(Date.parse(input))) return { ok: false, reason: 'must be an ISO 8601 date-time' };
      return { ok: true, payload: input, value: input };
    }
    case 'duration': {
      if (typeof input !== 'string' || !ISO8601_DURATION.test(input)) return { ok: false, reason: 'must be an ISO 8601 duration (PTxHxMxS)' };
      return { ok: true, payload: input, value: input };
    }
    case 'string': {
      if (typeof input !== 'string') return { ok: false, reason: 'must be a string' };
      if (Buffer.byteLength(input) > 268_435_455) return { ok: false, reason: 'too long' };
      return { ok: true, payload: input, value: input };
    }
  }
}

/** A received payload as a typed value: numbers and booleans decoded, anything else as text. */
export function decodeValue(datatype: Datatype | string | null | undefined, payload: string): HomieValue {
  switch (datatype) {
    case 'integer':
    case 'float': {
      const n = Number(payload);
      return payload.trim() !== '' && Number.isFinite(n) ? n : payload;
    }
    case 'boolean':
      return payload === 'true' ? true : payload === 'false' ? false : payload;
    default:
      return payload;
  }
}

/** The number a payload stands for, for aggregates and threshold rules (booleans count 0/1). */
export function numericValue(payload: string): number | null {
  if (payload === 'true') return 1;
  if (payload === 'false') return 0;
  if (!FLOAT.test(payload)) return null;
  const n = Number(payload);
  return Number.isFinite(n) ? n : null;
}

/** True when a payload the device published is the value that was asked for (its echo). */
export function sameValue(spec: PropertySpec, published: string, wanted: string): boolean {
  if (published === wanted) return true;
  if (spec.datatype === 'integer' || spec.datatype === 'float') return Number(published) === Number(wanted);
  return false;
}
