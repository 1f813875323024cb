// Over-the-air updates on MQTT (design/contract.md, "MQTT (device side)", OTA): the one definition
// of the messages, the steps a device reports and its error codes, for the reference firmware
// (firmware/ota/) now and the platform's update workflows later.
//
//   homie/<id>/$rdm/ota/set   platform → device  an update request, or a cancel (below), QoS 1
//   homie/<id>/$rdm/ota       device → platform  each step of an update, QoS 1, not retained
//   homie/<id>/$fw/version    device → platform  the running version, retained, after the reboot
//
// Request: {"updateId","version","url","size","sha256","signature"}; `signature` is the base64
// Ed25519 signature of the image's bytes (pure Ed25519: verify(null, bytes, publicKey, sig)).
// Cancel (this project's extension): {"updateId","cancel":true}. Before `installing` the device
// aborts and reports `failed` / `cancelled`; from `installing` on it is too late: it logs so and
// goes on. Report: {"updateId","state","progress"?,"error"?}.
//
// Pure: no Node built-ins, no I/O, no globals but TextDecoder at run time, so a Temporal workflow
// can import it (buildTestImage alone uses Buffer: tests and benchmarks, never workflows).
import { isSemVer } from './semver';

/** The steps of an update, in order; a device reports each one (`failed` can follow any step). */
export const OTA_STATES = ['downloading', 'downloaded', 'verified', 'installing', 'rebooting', 'updated', 'failed'] as const;
export type OtaState = (typeof OTA_STATES)[number];
/** After these nothing more is reported for the update. */
export const OTA_TERMINAL_STATES = ['updated', 'failed'] as const satisfies readonly OtaState[];
export type OtaTerminalState = (typeof OTA_TERMINAL_STATES)[number];
/** Until the device reports one of these, a cancel still stops the update. */
export const OTA_CANCELLABLE_STATES = ['downloading', 'downloaded', 'verified'] as const satisfies readonly OtaState[];

export const isOtaState = (v: unknown): v is OtaState => (OTA_STATES as readonly unknown[]).includes(v);
export const isTerminalOtaState = (s: OtaState): s is OtaTerminalState => (OTA_TERMINAL_STATES as readonly OtaState[]).includes(s);
export const isCancellableOtaState = (s: OtaState): boolean => (OTA_CANCELLABLE_STATES as readonly OtaState[]).includes(s);

/**
 * Why an update failed (`error` of a `failed` report). The reference firmware sends only these;
 * another firmware may send other codes of the same spelling (OTA_ERROR_PATTERN).
 */
export const OTA_ERRORS = [
  'download-failed', // the URL did not give the image (HTTP error, expired URL, retries exhausted)
  'size-mismatch', // more or fewer bytes than `size`
  'image-too-large', // `size` does not fit the device's slot (refused before downloading)
  'sha256-mismatch',
  'signature-invalid', // not signed by the platform's key
  'image-invalid', // signed, but not a firmware image for this device, or not of the announced version
  'install-failed', // writing the inactive slot failed
  'health-check-failed', // the new firmware booted and failed its check: rolled back, the old version runs
  'cancelled',
  'busy', // another update is in progress
  'no-public-key', // the device was flashed without the platform's public key: it can verify nothing
] as const;
export type OtaError = (typeof OTA_ERRORS)[number];
export const OTA_ERROR_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const isOtaError = (v: unknown): v is OtaError => (OTA_ERRORS as readonly unknown[]).includes(v);

/** platform → device on `$rdm/ota/set`. */
export interface OtaRequestMessage {
  updateId: string;
  /** Semantic version (semver.org 2.0) of the image: the device's `$fw/version` once it runs. */
  version: string;
  /** http(s); works as it is for a limited time, or with HTTP Basic auth by the device's MQTT login. */
  url: string;
  /** Bytes; the device refuses an image of any other length. */
  size: number;
  /** Lowercase hex SHA-256 of the image. */
  sha256: string;
  /** Base64 Ed25519 signature of the image's bytes. */
  signature: string;
}

/** platform → device on `$rdm/ota/set` (extension): stop this update if it has not reached `installing`. */
export interface OtaCancelMessage {
  updateId: string;
  cancel: true;
}

export type OtaSetMessage = { type: 'request'; request: OtaRequestMessage } | { type: 'cancel'; cancel: OtaCancelMessage };

/** device → platform on `$rdm/ota`. */
export interface OtaReportMessage {
  updateId: string;
  state: OtaState;
  /** `downloading` only: percent of `size` received, an integer 0 … 100. */
  progress?: number;
  /** `failed` only (and always there): an OTA_ERRORS code. */
  error?: string;
}

/**
 * The largest `size` a request may announce at all (the platform's FIRMWARE_MAX_BYTES ceiling). A
 * device with a smaller slot answers `failed` / `image-too-large`: a valid request, not a malformed one.
 */
export const OTA_MAX_IMAGE_BYTES = 16 * 1024 ** 3;
export const OTA_MAX_URL_CHARS = 2_048;
/** Request IDs are the platform's entity IDs; bounded and topic/log safe. */
export const OTA_UPDATE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
/** 64 signature bytes in padded standard base64: 86 characters and `==`. */
const ED25519_SIGNATURE_BASE64 = /^[A-Za-z0-9+/]{86}==$/;
/** A set message is small; a bound before JSON.parse keeps a hostile payload cheap. */
const MAX_SET_PAYLOAD_BYTES = 4_096;

/** semver.org 2.0, at most 64 characters: domain/semver.ts, the platform's own rule for releases. */
const isVersion = (v: unknown): v is string => typeof v === 'string' && isSemVer(v);

/**
 * An absolute http(s) URL of printable ASCII with a host and no user info (the device sends its
 * own credentials). Plain string work: URL is not a global a workflow can count on.
 */
export function isOtaUrl(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > OTA_MAX_URL_CHARS || !/^[\x21-\x7e]+$/.test(v)) return false;
  const m = /^https?:\/\/([^/?#]*)/i.exec(v);
  if (!m) return false;
  const authority = m[1]!;
  return authority.length > 0 && !authority.includes('@') && !authority.startsWith(':');
}

type Payload = string | Uint8Array;

function json(payload: Payload): unknown {
  if (payload.length > MAX_SET_PAYLOAD_BYTES) return undefined;
  try {
    return JSON.parse(typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Exactly these keys (the required ones present, nothing else): a field a device would silently ignore is refused instead. */
function hasKeys(v: Record<string, unknown>, required: readonly string[], optional: readonly string[] = []): boolean {
  const keys = Object.keys(v);
  return required.every((k) => k in v) && keys.every((k) => required.includes(k) || optional.includes(k));
}

const REQUEST_KEYS = ['updateId', 'version', 'url', 'size', 'sha256', 'signature'] as const;

function toRequest(v: unknown): OtaRequestMessage | null {
  if (!isObject(v) || !hasKeys(v, REQUEST_KEYS)) return null;
  const { updateId, version, url, size, sha256, signature } = v;
  if (typeof updateId !== 'string' || !OTA_UPDATE_ID_PATTERN.test(updateId)) return null;
  if (!isVersion(version) || !isOtaUrl(url)) return null;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > OTA_MAX_IMAGE_BYTES) return null;
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return null;
  if (typeof signature !== 'string' || !ED25519_SIGNATURE_BASE64.test(signature)) return null;
  return { updateId, version, url, size, sha256: sha256.toLowerCase(), signature };
}

function toCancel(v: unknown): OtaCancelMessage | null {
  if (!isObject(v) || !hasKeys(v, ['updateId', 'cancel']) || v.cancel !== true) return null;
  return typeof v.updateId === 'string' && OTA_UPDATE_ID_PATTERN.test(v.updateId) ? { updateId: v.updateId, cancel: true } : null;
}

/** An update request, or null for anything else (a cancel included). */
export const parseOtaRequest = (payload: Payload): OtaRequestMessage | null => toRequest(json(payload));
/** A cancel `{updateId, cancel: true}`, or null. */
export const parseOtaCancel = (payload: Payload): OtaCancelMessage | null => toCancel(json(payload));

/** What arrived on `$rdm/ota/set`: a request, a cancel, or null (malformed: drop, count, log). */
export function parseOtaSet(payload: Payload): OtaSetMessage | null {
  const v = json(payload);
  const request = toRequest(v);
  if (request) return { type: 'request', request };
  const cancel = toCancel(v);
  return cancel ? { type: 'cancel', cancel } : null;
}

/** A device's report, or null: `progress` only while downloading, `error` exactly when failed. */
export function parseOtaReport(payload: Payload): OtaReportMessage | null {
  const v = json(payload);
  if (!isObject(v) || !hasKeys(v, ['updateId', 'state'], ['progress', 'error'])) return null;
  const { updateId, state, progress, error } = v;
  if (typeof updateId !== 'string' || !OTA_UPDATE_ID_PATTERN.test(updateId) || !isOtaState(state)) return null;
  if (progress !== undefined && (state !== 'downloading' || typeof progress !== 'number' || !Number.isInteger(progress) || progress < 0 || progress > 100)) return null;
  if ((state === 'failed') !== (error !== undefined)) return null;
  if (error !== undefined && (typeof error !== 'string' || !OTA_ERROR_PATTERN.test(error))) return null;
  return { updateId, state, ...(progress !== undefined ? { progress } : {}), ...(error !== undefined ? { error: error as string } : {}) };
}

/** A report as the reference firmware sends it (progress and error only where they belong). */
export function otaReport(updateId: string, state: OtaState, extra: { progress?: number; error?: OtaError } = {}): OtaReportMessage {
  const r: OtaReportMessage = { updateId, state };
  if (state === 'downloading' && extra.progress !== undefined) r.progress = Math.max(0, Math.min(100, Math.floor(extra.progress)));
  if (state === 'failed') r.error = extra.error ?? 'install-failed';
  return r;
}

// ---------------------------------------------------------------- the test image format

/**
 * A firmware image the reference firmware can install, for tests and benchmarks of both sides:
 * one ASCII header line `RDMFW1 {"version":"1.2.0","healthCheck":"pass"}\n`, then deterministic
 * bytes up to `size`. The device installs only an image whose header it reads and whose version is
 * the one announced; `healthCheck: "fail"` makes the new firmware fail its check after the reboot.
 */
export const TEST_IMAGE_MAGIC = 'RDMFW1';
/** The header line is at most this long, its newline included. */
export const MAX_IMAGE_HEADER_BYTES = 256;
export type ImageHealthCheck = 'pass' | 'fail';

export interface ImageHeader {
  version: string;
  healthCheck: ImageHealthCheck;
}

function headerLine(h: ImageHeader): string {
  return `${TEST_IMAGE_MAGIC} ${JSON.stringify({ version: h.version, healthCheck: h.healthCheck })}\n`;
}

/** FNV-1a, then xorshift32: the same image for the same header, every run. */
function fill(buf: Uint8Array, from: number, seedText: string): void {
  let s = 0x811c9dc5;
  for (let i = 0; i < seedText.length; i++) s = Math.imul(s ^ seedText.charCodeAt(i), 0x01000193);
  s = s >>> 0 || 1;
  for (let i = from; i < buf.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    buf[i] = s & 0xff;
    if (i + 1 < buf.length) buf[i + 1] = (s >>> 8) & 0xff;
    if (i + 2 < buf.length) buf[i + 2] = (s >>> 16) & 0xff;
    if (i + 3 < buf.length) buf[i + 3] = s >>> 24;
  }
}

/** An image of exactly `size` bytes (at least its header). Uses Buffer: Node only (tests, benchmarks). */
export function buildTestImage(o: { version: string; size: number; healthCheck?: ImageHealthCheck }): Buffer {
  if (!isVersion(o.version)) throw new Error(`not a semantic version: ${JSON.stringify(o.version)}`);
  const line = headerLine({ version: o.version, healthCheck: o.healthCheck ?? 'pass' });
  if (!Number.isSafeInteger(o.size) || o.size < line.length || o.size > 2 ** 31 - 1) {
    throw new Error(`size must be an integer from ${line.length} (the header) to 2 GiB, not ${o.size}`);
  }
  const buf = Buffer.alloc(o.size);
  buf.write(line, 0, 'latin1');
  fill(buf, line.length, line);
  return buf;
}

/** The header of an image, or null when it has none (not an image of this format). */
export function readImageHeader(buf: Uint8Array): ImageHeader | null {
  const end = Math.min(buf.length, MAX_IMAGE_HEADER_BYTES);
  let line = '';
  let i = 0;
  for (; i < end && buf[i] !== 0x0a; i++) {
    const b = buf[i]!;
    if (b < 0x20 || b > 0x7e) return null;
    line += String.fromCharCode(b);
  }
  if (i === end || !line.startsWith(`${TEST_IMAGE_MAGIC} `)) return null;
  let v: unknown;
  try {
    v = JSON.parse(line.slice(TEST_IMAGE_MAGIC.length + 1));
  } catch {
    return null;
  }
  if (!isObject(v) || !isVersion(v.version)) return null;
  const hc = v.healthCheck ?? 'pass';
  if (hc !== 'pass' && hc !== 'fail') return null;
  return { version: v.version, healthCheck: hc };
}
