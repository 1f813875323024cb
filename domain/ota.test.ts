// The OTA messages as both sides read them: strict parsers, the report's rules, the test image.
import { buildTestImage, isOtaUrl, MAX_IMAGE_HEADER_BYTES, OTA_MAX_IMAGE_BYTES, OTA_STATES, OTA_TERMINAL_STATES, otaReport, parseOtaCancel, parseOtaReport, parseOtaRequest, parseOtaSet, readImageHeader } from './ota';

const SIG = `${'A'.repeat(86)}==`;
const SHA = 'ab'.repeat(32);
const good = { updateId: 'U1', version: '1.2.0', url: 'https://fw.example.com/images/1?sig=x', size: 1024, sha256: SHA, signature: SIG };
const text = (v: unknown) => JSON.stringify(v);

describe('parseOtaRequest', () => {
  it('takes the contract shape, from a string or bytes, and lowercases the hash', () => {
    expect(parseOtaRequest(text(good))).toEqual(good);
    expect(parseOtaRequest(Buffer.from(text(good)))).toEqual(good);
    expect(parseOtaRequest(text({ ...good, sha256: SHA.toUpperCase() }))?.sha256).toBe(SHA);
    expect(parseOtaRequest(text({ ...good, version: '2.0.0-rc.1+build.5', url: 'http://10.0.0.1:8080/fw' }))).not.toBeNull();
    // Larger than a device's slot is still a request (the device answers image-too-large), up to the platform's ceiling.
    expect(parseOtaRequest(text({ ...good, size: 1024 ** 3 }))?.size).toBe(1024 ** 3);
  });

  it('refuses everything else', () => {
    const bad: unknown[] = [
      { ...good, extra: 1 }, // an unknown field would be silently ignored: refused instead
      { ...good, updateId: undefined },
      { ...good, updateId: 'has space' },
      { ...good, updateId: 'x'.repeat(65) },
      { ...good, version: '1.2' },
      { ...good, version: 'v1.2.0' },
      { ...good, version: '01.2.0' },
      { ...good, version: 1 },
      { ...good, version: `1.0.0-${'a'.repeat(60)}` }, // over 64 characters
      { ...good, size: -1 },
      { ...good, size: 0 },
      { ...good, size: 1.5 },
      { ...good, size: OTA_MAX_IMAGE_BYTES + 1 },
      { ...good, size: '1024' },
      { ...good, sha256: 'zz'.repeat(32) },
      { ...good, sha256: SHA.slice(2) },
      { ...good, signature: 'not base64!' },
      { ...good, signature: `${'A'.repeat(87)}=` }, // not 64 bytes
      { ...good, url: 'ftp://fw.example.com/1' },
      { ...good, url: 'file:///etc/passwd' },
      { ...good, url: 'https://user:pw@fw.example.com/1' },
      { ...good, url: 'https:///nohost' },
      { ...good, url: 'https://fw.example.com/a b' },
      { ...good, url: `https://fw.example.com/${'a'.repeat(2100)}` },
      [good],
      null,
      'text',
    ];
    for (const b of bad) expect(parseOtaRequest(text(b))).toBeNull();
    expect(parseOtaRequest('{not json')).toBeNull();
    expect(parseOtaRequest(Buffer.from([0xff, 0xfe, 0x7b]))).toBeNull(); // not UTF-8
    expect(parseOtaRequest(text({ ...good, url: `https://a.example/${'a'.repeat(5_000)}` }))).toBeNull(); // over the payload bound
  });

  it('checks URLs by string rules alone', () => {
    expect(isOtaUrl('https://fw.example.com')).toBe(true);
    expect(isOtaUrl('HTTPS://fw.example.com/x')).toBe(true);
    expect(isOtaUrl('https://:443/x')).toBe(false);
    expect(isOtaUrl('javascript:alert(1)')).toBe(false);
  });
});

describe('the set topic: request or cancel', () => {
  it('tells a cancel from a request, and refuses a mix of both', () => {
    expect(parseOtaCancel(text({ updateId: 'U1', cancel: true }))).toEqual({ updateId: 'U1', cancel: true });
    expect(parseOtaSet(text({ updateId: 'U1', cancel: true }))).toEqual({ type: 'cancel', cancel: { updateId: 'U1', cancel: true } });
    expect(parseOtaSet(text(good))).toEqual({ type: 'request', request: good });
    for (const b of [{ updateId: 'U1', cancel: false }, { updateId: 'U1', cancel: 'yes' }, { updateId: 'U1' }, { ...good, cancel: true }, {}]) expect(parseOtaSet(text(b))).toBeNull();
    expect(parseOtaRequest(text({ updateId: 'U1', cancel: true }))).toBeNull();
  });
});

describe('reports', () => {
  it('knows the steps and which end an update', () => {
    expect(OTA_STATES).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', 'updated', 'failed']);
    expect(OTA_TERMINAL_STATES).toEqual(['updated', 'failed']);
  });

  it('progress only while downloading, an error exactly when failed', () => {
    expect(parseOtaReport(text({ updateId: 'U1', state: 'downloading', progress: 40 }))).toEqual({ updateId: 'U1', state: 'downloading', progress: 40 });
    expect(parseOtaReport(text({ updateId: 'U1', state: 'failed', error: 'busy' }))).toEqual({ updateId: 'U1', state: 'failed', error: 'busy' });
    expect(parseOtaReport(text({ updateId: 'U1', state: 'failed', error: 'vendor-specific' }))).not.toBeNull(); // other firmware, other codes
    for (const b of [
      { updateId: 'U1', state: 'verified', progress: 10 },
      { updateId: 'U1', state: 'downloading', progress: 101 },
      { updateId: 'U1', state: 'downloading', progress: 5.5 },
      { updateId: 'U1', state: 'failed' },
      { updateId: 'U1', state: 'updated', error: 'busy' },
      { updateId: 'U1', state: 'failed', error: 'Not A Code' },
      { updateId: 'U1', state: 'done' },
      { updateId: 'U1', state: 'updated', extra: 1 },
    ])
      expect(parseOtaReport(text(b))).toBeNull();
  });

  it('builds what it parses', () => {
    expect(otaReport('U1', 'downloading', { progress: 33.9 })).toEqual({ updateId: 'U1', state: 'downloading', progress: 33 });
    expect(otaReport('U1', 'verified', { progress: 100 })).toEqual({ updateId: 'U1', state: 'verified' });
    expect(otaReport('U1', 'failed', { error: 'cancelled' })).toEqual({ updateId: 'U1', state: 'failed', error: 'cancelled' });
    for (const r of [otaReport('U1', 'downloading', { progress: 0 }), otaReport('U1', 'failed', { error: 'sha256-mismatch' }), otaReport('U1', 'updated')]) expect(parseOtaReport(text(r))).toEqual(r);
  });
});

describe('the test image', () => {
  it('is its header line, then deterministic bytes up to the size', () => {
    const a = buildTestImage({ version: '1.2.0', size: 4096, healthCheck: 'fail' });
    expect(a.length).toBe(4096);
    expect(a.subarray(0, 45).toString('latin1')).toBe('RDMFW1 {"version":"1.2.0","healthCheck":"fail"}'.slice(0, 45));
    expect(a.toString('latin1').split('\n')[0]).toBe('RDMFW1 {"version":"1.2.0","healthCheck":"fail"}');
    expect(readImageHeader(a)).toEqual({ version: '1.2.0', healthCheck: 'fail' });
    expect(buildTestImage({ version: '1.2.0', size: 4096, healthCheck: 'fail' }).equals(a)).toBe(true);
    expect(buildTestImage({ version: '1.2.1', size: 4096, healthCheck: 'fail' }).subarray(100).equals(a.subarray(100))).toBe(false);
    expect(readImageHeader(buildTestImage({ version: '3.0.0', size: 100 }))).toEqual({ version: '3.0.0', healthCheck: 'pass' });
    expect(() => buildTestImage({ version: '1.2.0', size: 10 })).toThrow(/header/);
    expect(() => buildTestImage({ version: 'x', size: 1000 })).toThrow(/semantic/);
  });

  it('reads no header from anything else', () => {
    expect(readImageHeader(Buffer.from('RDMFW1 {"version":"1.0.0"}\n'))).toEqual({ version: '1.0.0', healthCheck: 'pass' });
    for (const b of ['RDMFW1 {"version":"1.0"}\n', 'RDMFW2 {"version":"1.0.0"}\n', 'RDMFW1 {"version":"1.0.0"}', 'RDMFW1 {"version":"1.0.0","healthCheck":"maybe"}\n', 'RDMFW1 nope\n', `RDMFW1 ${' '.repeat(MAX_IMAGE_HEADER_BYTES)}{"version":"1.0.0"}\n`]) {
      expect(readImageHeader(Buffer.from(b))).toBeNull();
    }
    expect(readImageHeader(Buffer.from([0x52, 0x44, 0x00, 0x0a]))).toBeNull();
  });
});
