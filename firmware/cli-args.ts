// Small helpers shared by the two command lines (node:util parseArgs does the parsing).
import fs from 'node:fs';
import type { HomieMode } from './device';
import { OTA_MODES, type OtaMode } from './ota/updater';
import { loadPublicKey } from './ota/verify';

export function intArg(name: string, value: string | undefined, opts: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new Error(`--${name} must be an integer, not "${value}"`);
  if (opts.min !== undefined && n < opts.min) throw new Error(`--${name} must be at least ${opts.min}`);
  if (opts.max !== undefined && n > opts.max) throw new Error(`--${name} must be at most ${opts.max}`);
  return n;
}

export function numberArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not "${value}"`);
  return n;
}

export function homieArg(value: string | undefined): HomieMode {
  if (value === undefined || value === '4' || value === '4.0' || value === '4.0.0') return '4.0';
  if (value === '3' || value === '3.0' || value === '3.0.1') return '3.0';
  throw new Error(`--homie must be 4.0 or 3.0, not "${value}"`);
}

export function qosArg(value: string | undefined): 0 | 1 | undefined {
  if (value === undefined) return undefined;
  if (value === '0' || value === '1') return Number(value) as 0 | 1;
  throw new Error(`--qos must be 0 or 1, not "${value}"`);
}

export function otaModeArg(value: string | undefined): OtaMode | undefined {
  if (value === undefined) return undefined;
  if ((OTA_MODES as readonly string[]).includes(value)) return value as OtaMode;
  throw new Error(`--ota must be one of ${OTA_MODES.join(', ')}, not "${value}"`);
}

/** `--ota-public-key <file>`: the platform's public key (PEM, Ed25519), checked at start rather than at the first update. */
export function otaPublicKeyArg(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const pem = fs.readFileSync(file, 'utf8');
  try {
    loadPublicKey(pem);
  } catch (err) {
    throw new Error(`--ota-public-key ${file}: ${(err as Error).message}`);
  }
  return pem;
}
