// Is this the image the platform announced and signed? Its length, its SHA-256 (streamed from the
// file) and its Ed25519 signature by the platform's key, the one the device was flashed with.
// Pure Ed25519 signs the whole message (it hashes it twice), so the signature check needs the image
// whole: read after the cheaper checks passed, and verified on libuv's thread pool, off the loop.
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';

/** A downloaded image: a file in the state directory, or bytes in memory (the fleet). */
export type ImageSource = { kind: 'file'; file: string } | { kind: 'memory'; bytes: Buffer };

export type VerifyError = 'size-mismatch' | 'sha256-mismatch' | 'signature-invalid';
export type VerifyResult = { ok: true } | { ok: false; error: VerifyError; detail: string };

/** The platform's public key (SPKI PEM); throws unless it is an Ed25519 key. */
export function loadPublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the OTA public key must be an Ed25519 key, not ${key.asymmetricKeyType}`);
  return key;
}

export async function imageSize(image: ImageSource): Promise<number> {
  return image.kind === 'memory' ? image.bytes.length : (await fs.promises.stat(image.file)).size;
}

export async function sha256Of(image: ImageSource): Promise<string> {
  const hash = createHash('sha256');
  if (image.kind === 'memory') return hash.update(image.bytes).digest('hex');
  await pipeline(fs.createReadStream(image.file), hash);
  return hash.digest('hex');
}

export function imageBytes(image: ImageSource): Promise<Buffer> {
  return image.kind === 'memory' ? Promise.resolve(image.bytes) : fs.promises.readFile(image.file);
}

/** The base64 Ed25519 signature of `bytes` by `key`? */
export function signatureValid(bytes: Buffer, signatureBase64: string, key: KeyObject): Promise<boolean> {
  const sig = Buffer.from(signatureBase64, 'base64');
  if (sig.length !== 64) return Promise.resolve(false);
  return new Promise((resolve) => verify(null, bytes, key, sig, (err, ok) => resolve(!err && ok)));
}

/** Size, then SHA-256, then the signature: the first that fails is the answer. */
export async function verifyImage(image: ImageSource, expected: { size: number; sha256: string; signature: string }, key: KeyObject): Promise<VerifyResult> {
  const size = await imageSize(image);
  if (size !== expected.size) return { ok: false, error: 'size-mismatch', detail: `${size} bytes, ${expected.size} announced` };
  const sha256 = await sha256Of(image);
  if (sha256 !== expected.sha256.toLowerCase()) return { ok: false, error: 'sha256-mismatch', detail: `sha256 ${sha256}, ${expected.sha256} announced` };
  // A matching hash says the bytes are the announced ones; only the signature says the platform made them.
  if (!(await signatureValid(await imageBytes(image), expected.signature, key))) return { ok: false, error: 'signature-invalid', detail: 'not signed by the platform key' };
  return { ok: true };
}
