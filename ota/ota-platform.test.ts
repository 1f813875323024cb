// The platform's firmware pieces on their own: storage streams an image in (size and SHA-256 on the
// way, a limit that keeps nothing), reads ranges back; the signer's signature verifies with the
// public key it serves and a tampered image does not; download links expire and cannot be forged.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { Readable } from 'node:stream';
import { CredentialDeriver } from '../domain/credentials';
import { ImageTooLargeError, localFirmwareStorage } from './storage';
import { firmwareSigner, publicKeyFingerprint } from './signing';
import { checkDownloadGrant, downloadUrl } from './download-url';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-ota-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stream of `n` chunks of 64 KiB, never held whole. */
function chunks(n: number, seed = 1): Readable {
  let i = 0;
  return new Readable({ read() { this.push(i++ < n ? Buffer.alloc(65_536, (seed + i) % 251) : null); } });
}

test('storage streams an image in, counting and hashing it, and reads ranges back', async () => {
  const s = localFirmwareStorage(path.join(dir, 'store'));
  const want = createHash('sha256');
  for (let i = 1; i <= 40; i++) want.update(Buffer.alloc(65_536, (1 + i) % 251));
  expect(await s.write('img1', chunks(40), 40 * 65_536)).toEqual({ size: 40 * 65_536, sha256: want.digest('hex') });
  expect(await s.size('img1')).toBe(40 * 65_536);
  const part = Buffer.concat(await s.read('img1', { start: 65_535, end: 65_537 }).toArray());
  expect([...part]).toEqual([2, 3, 3]);
  expect(await s.size('nope')).toBeNull();
  expect(() => s.read('../etc/passwd')).toThrow(/not a storage key/);
});

test('an image past the limit is refused and leaves nothing behind', async () => {
  const store = path.join(dir, 'limited');
  const s = localFirmwareStorage(store);
  await expect(s.write('big', chunks(10), 9 * 65_536)).rejects.toBeInstanceOf(ImageTooLargeError);
  expect(await s.size('big')).toBeNull();
  expect(fs.readdirSync(store)).toEqual([]); // no half-written part either
});

test('the signer signs a file off the event loop; the signature verifies with its public key, a tampered image does not', async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = firmwareSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const file = path.join(dir, 'image.bin');
  const image = randomBytes(3 * 1024 * 1024);
  fs.writeFileSync(file, image);
  const sig = Buffer.from(await signer.signFile(file), 'base64');
  expect(sig).toHaveLength(64);
  expect(verify(null, image, signer.publicKeyPem, sig)).toBe(true);
  image[1000] ^= 1;
  expect(verify(null, image, signer.publicKeyPem, sig)).toBe(false);
  expect(signer.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  expect(signer.fingerprint).toBe(publicKeyFingerprint(createPublicKey(privateKey)));
  await expect(signer.signFile(path.join(dir, 'missing.bin'))).rejects.toThrow(/signing failed/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  expect(() => firmwareSigner(rsa)).toThrow(/Ed25519/);
});

test('a download link works for its device and release until it expires, and cannot be altered', () => {
  const creds = new CredentialDeriver(randomBytes(32));
  const now = Math.floor(Date.now() / 1000);
  const g = { releaseId: 'R1', deviceId: 'ABCDEFGHJKMN', expires: now + 60 };
  const u = new URL(downloadUrl('https://rdm.example/', creds, g));
  expect(u.pathname).toBe('/api/v1/firmware/R1/image');
  const sig = u.searchParams.get('sig')!;
  expect(checkDownloadGrant(creds, g, sig, now)).toBe('ok');
  expect(checkDownloadGrant(creds, g, sig, now + 61)).toBe('expired');
  expect(checkDownloadGrant(creds, { ...g, deviceId: 'ABCDEFGHJKMP' }, sig, now)).toBe('invalid');
  expect(checkDownloadGrant(creds, { ...g, releaseId: 'R2' }, sig, now)).toBe('invalid');
  expect(checkDownloadGrant(creds, { ...g, expires: g.expires + 3600 }, sig, now)).toBe('invalid');
  expect(checkDownloadGrant(new CredentialDeriver(randomBytes(32)), g, sig, now)).toBe('invalid');
  expect(checkDownloadGrant(creds, g, '', now)).toBe('invalid');
});
