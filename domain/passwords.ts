// Passwords: scrypt (node:crypto, OpenSSL's implementation) with a per-user salt. The stored
// string records its parameters, so they can be raised later and old hashes still verify:
//   scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>
// Parameters: OWASP's N=2^14, r=8, p=5 (16 MiB; ~0.2 s on this machine), run on libuv's pool so
// the event loop keeps serving while a hash is computed.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 200;

interface Params {
  logN: number;
  r: number;
  p: number;
}
const CURRENT: Params = { logN: 14, r: 8, p: 5 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

function scrypt(password: string, salt: Buffer, { logN, r, p }: Params): Promise<Buffer> {
  const N = 2 ** logN;
  const opts: ScryptOptions = { N, r, p, maxmem: 128 * N * r * 2 };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, CURRENT);
  return ['scrypt', CURRENT.logN, CURRENT.r, CURRENT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

function parse(stored: string): { params: Params; salt: Buffer; key: Buffer } | null {
  const [scheme, logN, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return null;
  const params = { logN: Number(logN), r: Number(r), p: Number(p) };
  if (![params.logN, params.r, params.p].every((n) => Number.isInteger(n) && n > 0) || params.logN > 20) return null;
  return { params, salt: Buffer.from(salt, 'base64url'), key: Buffer.from(key, 'base64url') };
}

/** A hash no password matches, costing what a real one does: unknown emails take as long as wrong passwords. */
let decoy: Promise<string> | undefined;

/** True when `password` matches `stored`. With `stored` null (no such user) the same work is done, and false returned. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parsed = parse(stored ?? (await (decoy ??= hashPassword(randomBytes(24).toString('hex')))));
  if (!parsed) return false;
  const key = await scrypt(password, parsed.salt, parsed.params);
  return stored !== null && key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}
