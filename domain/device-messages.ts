// Payloads of the `$rdm` management topics (see domain/topics.ts): one definition for the
// firmware that produces or obeys them, the bridge that reads them and the API that sends them.
// Parsers return null for anything malformed; callers drop, count and log it.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Settings are a flat-or-nested JSON object; the platform merges PATCHes into it (RFC 7386). */
export type Settings = Record<string, unknown>;

/** platform → device, retained on `$rdm/config/set`: the whole desired configuration. */
export interface DesiredConfigMessage {
  version: number;
  settings: Settings;
}

/** device → platform, retained on `$rdm/config`: what the device applied, and from which version. */
export interface ReportedConfigMessage {
  version: number;
  settings: Settings;
}

/** device → platform on `$rdm/log`. `time` is the device's clock, when it has one. */
export interface LogMessage {
  level: LogLevel;
  message: string;
  time?: string;
  fields?: Record<string, unknown>;
}

/** The diagnostic commands the reference firmware implements; others are refused by it. */
export const DIAGNOSTIC_COMMANDS = ['ping', 'self-test', 'reboot', 'read-logs'] as const;
export type DiagnosticCommand = (typeof DIAGNOSTIC_COMMANDS)[number];

/** platform → device on `$rdm/cmd/<requestId>`. */
export interface CommandMessage {
  command: string;
  args?: Record<string, unknown>;
}

/** device → platform on `$rdm/cmd/<requestId>/result`. */
export interface CommandResultMessage {
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** platform → device on `$rdm/pairing/request`: a user asks to pair; the device confirms by its button before `expiresAt`. */
export interface PairingRequestMessage {
  pairingId: string;
  expiresAt: string;
}

/** device → platform on `$rdm/pairing/response`. */
export interface PairingResponseMessage {
  pairingId: string;
  accept: boolean;
}

/** platform → device, retained on `$rdm/owner` (an empty payload: no owner). */
export interface OwnerMessage {
  ownerId: string;
}

export const MAX_LOG_MESSAGE_CHARS = 4_096;

function json(payload: Buffer | string): unknown {
  try {
    return JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseConfig(payload: Buffer | string): { version: number; settings: Settings } | null {
  const v = json(payload);
  if (!isObject(v) || !Number.isSafeInteger(v.version) || (v.version as number) < 0 || !isObject(v.settings)) return null;
  return { version: v.version as number, settings: v.settings };
}

export const parseDesiredConfig = (p: Buffer | string): DesiredConfigMessage | null => parseConfig(p);
export const parseReportedConfig = (p: Buffer | string): ReportedConfigMessage | null => parseConfig(p);

export function parseLog(payload: Buffer | string): LogMessage | null {
  const v = json(payload);
  if (!isObject(v) || typeof v.message !== 'string' || !(LOG_LEVELS as readonly unknown[]).includes(v.level)) return null;
  if (v.time !== undefined && (typeof v.time !== 'string' || Number.isNaN(Date.parse(v.time)))) return null;
  if (v.fields !== undefined && !isObject(v.fields)) return null;
  return {
    level: v.level as LogLevel,
    message: v.message.slice(0, MAX_LOG_MESSAGE_CHARS),
    ...(v.time !== undefined ? { time: v.time as string } : {}),
    ...(v.fields !== undefined ? { fields: v.fields as Record<string, unknown> } : {}),
  };
}

export function parseCommand(payload: Buffer | string): CommandMessage | null {
  const v = json(payload);
  if (!isObject(v) || typeof v.command !== 'string' || (v.args !== undefined && !isObject(v.args))) return null;
  return { command: v.command, ...(v.args ? { args: v.args as Record<string, unknown> } : {}) };
}

export function parseCommandResult(payload: Buffer | string): CommandResultMessage | null {
  const v = json(payload);
  if (!isObject(v) || typeof v.ok !== 'boolean' || (v.error !== undefined && typeof v.error !== 'string')) return null;
  return { ok: v.ok, ...(v.result !== undefined ? { result: v.result } : {}), ...(v.error !== undefined ? { error: v.error as string } : {}) };
}

/** Pairing and owner IDs are the platform's entity IDs; a bound keeps a hostile payload from carrying anything else. */
const PAIRING_REF = /^[A-Za-z0-9_-]{1,64}$/;

export function parsePairingRequest(payload: Buffer | string): PairingRequestMessage | null {
  const v = json(payload);
  if (!isObject(v) || typeof v.pairingId !== 'string' || !PAIRING_REF.test(v.pairingId)) return null;
  if (typeof v.expiresAt !== 'string' || Number.isNaN(Date.parse(v.expiresAt))) return null;
  return { pairingId: v.pairingId, expiresAt: v.expiresAt };
}

export function parsePairingResponse(payload: Buffer | string): PairingResponseMessage | null {
  const v = json(payload);
  if (!isObject(v) || typeof v.pairingId !== 'string' || !PAIRING_REF.test(v.pairingId) || typeof v.accept !== 'boolean') return null;
  return { pairingId: v.pairingId, accept: v.accept };
}

/** The owner topic's payload: `{ownerId}`, or null for none (an empty payload clears it); undefined when malformed. */
export function parseOwner(payload: Buffer | string): string | null | undefined {
  if (payload.length === 0) return null;
  const v = json(payload);
  if (!isObject(v) || typeof v.ownerId !== 'string' || !PAIRING_REF.test(v.ownerId)) return undefined;
  return v.ownerId;
}
