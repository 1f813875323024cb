// The platform's firmware signing key (Ed25519): from FIRMWARE_SIGNING_KEY (PEM, PKCS#8) when set,
// the same value on every api process of a deployment; otherwise made once and kept in
// DATA_DIR/firmware-signing-key.pem (0600). Its public key is served (GET /firmware/public-key)
// and flashed into devices, so its fingerprint is settled in Postgres on first use: a process
// started with another key refuses to run instead of signing images no device would accept.
//
// Ed25519 (pure, as the contract says: the signature is over the image's bytes) hashes the whole
// message twice, so it cannot be fed a stream: the image is read and signed in a worker thread,
// off the API's event loop, bounded by FIRMWARE_MAX_BYTES.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Db } from '../db/knex';
import { settleSetting } from '../db/repositories/settings';

export const SIGNING_KEY_FILE = 'firmware-signing-key.pem';

export interface FirmwareSigner {
  /** SPKI PEM: what devices verify with. */
  readonly publicKeyPem: string;
  readonly fingerprint: string;
  /** The base64 Ed25519 signature of the file's bytes. */
  signFile(file: string): Promise<string>;
}

export class SigningKeyMismatchError extends Error {}

function readOrCreateKeyFile(dataDir: string): string {
  const file = path.join(dataDir, SIGNING_KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    const { privateKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return fs.readFileSync(file, 'utf8');
}

export function publicKeyFingerprint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

// Runs in the thread: reads the image, signs it, answers the signature. Plain JS (no TS loader there).
const SIGN_IN_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
try {
  const sig = crypto.sign(null, fs.readFileSync(workerData.file), workerData.key);
  parentPort.postMessage({ ok: true, signature: sig.toString('base64') });
} catch (err) {
  parentPort.postMessage({ ok: false, message: err.message });
}
`;

function signInThread(file: string, keyPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const w = new Worker(SIGN_IN_THREAD, { eval: true, workerData: { file, key: keyPem } });
    w.once('message', (m: { ok: boolean; signature?: string; message?: string }) => (m.ok ? resolve(m.signature!) : reject(new Error(`signing failed: ${m.message}`))));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`the signing thread exited with ${code}`)));
  });
}

/** A signer for this key (PKCS#8 PEM); the key must be Ed25519. */
export function firmwareSigner(privateKeyPem: string): FirmwareSigner {
  const privateKey = createPrivateKey(privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`FIRMWARE_SIGNING_KEY: an Ed25519 key is needed, this one is ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    fingerprint: publicKeyFingerprint(publicKey),
    signFile: (file) => signInThread(file, pem),
  };
}

export async function loadFirmwareSigner(db: Db, cfg: { FIRMWARE_SIGNING_KEY?: string; DATA_DIR: string }): Promise<FirmwareSigner> {
  const signer = firmwareSigner(cfg.FIRMWARE_SIGNING_KEY ?? readOrCreateKeyFile(cfg.DATA_DIR));
  const settled = await settleSetting(db, 'firmware_key_fingerprint', signer.fingerprint);
  if (settled !== signer.fingerprint) {
    throw new SigningKeyMismatchError(
      `FIRMWARE_SIGNING_KEY: this key (fingerprint ${signer.fingerprint}) is not the one this platform's devices trust (${settled}); ` +
        `set FIRMWARE_SIGNING_KEY to the original key${cfg.FIRMWARE_SIGNING_KEY ? '' : ` or restore ${path.join(cfg.DATA_DIR, SIGNING_KEY_FILE)}`}`,
    );
  }
  return signer;
}
