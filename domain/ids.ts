// Identifiers: Crockford base32 (no I, L, O, U), uppercase, safe in an MQTT topic, a file name,
// a URL and a QR code's alphanumeric mode (which keeps the codes small).
import { randomBytes } from 'node:crypto';

export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const DEVICE_ID_LENGTH = 12; // 60 random bits
export const DEVICE_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{12}$/;
export const ENTITY_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{16}$/;

/** Encodes the low 5 bits of each byte: uniform because 256 is a multiple of 32. */
export function crockford(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += CROCKFORD[b & 31];
  return out;
}

export function newDeviceId(): string {
  return crockford(randomBytes(DEVICE_ID_LENGTH));
}

/** Batches, tokens, bulk operations: 80 random bits. */
export function newEntityId(): string {
  return crockford(randomBytes(16));
}

export function isDeviceId(value: string): boolean {
  return DEVICE_ID_PATTERN.test(value);
}
