import { CredentialDeriver, base32, newApiToken, sha256Hex, DEVICE_SECRET_LENGTH, PAIRING_CODE_LENGTH } from './credentials';
import { newDeviceId, DEVICE_ID_PATTERN, CROCKFORD } from './ids';
import { parseQrPayload, qrPayload } from './qr-payload';

describe('credentials', () => {
  const key = Buffer.from('k'.repeat(40));
  const deriver = new CredentialDeriver(key);

  it('derives the same secret for the same device and generation, and another after re-keying', () => {
    const a = deriver.device('ABCDEFGHJKMN');
    expect(deriver.device('ABCDEFGHJKMN')).toEqual(a);
    expect(deriver.device('ABCDEFGHJKMN', 2).secret).not.toBe(a.secret);
    expect(deriver.device('ABCDEFGHJKMP').secret).not.toBe(a.secret);
    expect(new CredentialDeriver(Buffer.from('x'.repeat(40))).device('ABCDEFGHJKMN').secret).not.toBe(a.secret);
  });

  it('stores only hashes, and the secret and pairing code differ', () => {
    const c = deriver.device('ABCDEFGHJKMN');
    expect(c.secret).toHaveLength(DEVICE_SECRET_LENGTH);
    expect(c.pairingCode).toHaveLength(PAIRING_CODE_LENGTH);
    expect(c.secretHash).toBe(sha256Hex(c.secret));
    expect(c.pairingCodeHash).toBe(sha256Hex(c.pairingCode));
    expect(c.secret.startsWith(c.pairingCode)).toBe(false);
  });

  it('refuses a short key', () => {
    expect(() => new CredentialDeriver(Buffer.from('short'))).toThrow();
  });

  it('packs bits into base32 like RFC 4648 (on the Crockford alphabet)', () => {
    expect(base32(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), 8)).toBe('ZZZZZZZZ');
    expect(base32(Buffer.from([0, 0, 0, 0, 0]), 8)).toBe('00000000');
    expect(base32(Buffer.from([0x08, 0x42, 0x10, 0x84, 0x21]), 8)).toBe('11111111');
    expect(() => base32(Buffer.from([1]), 2)).toThrow();
  });

  it('makes unique, topic-safe device IDs and prefixed API tokens', () => {
    const ids = new Set(Array.from({ length: 20_000 }, newDeviceId));
    expect(ids.size).toBe(20_000);
    for (const id of [...ids].slice(0, 100)) expect(id).toMatch(DEVICE_ID_PATTERN);
    const t = newApiToken();
    expect(t).toMatch(new RegExp(`^rdm_[${CROCKFORD}]{51}$`));
  });

  it('round-trips the QR payload and refuses foreign ones', () => {
    const p = qrPayload('ABCDEFGHJKMN', '0123456789');
    expect(p).toBe('RDM1:ABCDEFGHJKMN:0123456789');
    expect(parseQrPayload(p)).toEqual({ deviceId: 'ABCDEFGHJKMN', pairingCode: '0123456789' });
    expect(parseQrPayload('https://example.com')).toBeNull();
    expect(parseQrPayload('RDM1:abc:1')).toBeNull();
    expect(parseQrPayload('RDM1:ABCDEFGHJKMN:0123456789:extra')).toBeNull();
  });
});
