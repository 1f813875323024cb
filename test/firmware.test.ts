// Firmware releases through the API (design/contract.md "firmware"): a manufacturer uploads an
// image (multipart, streamed), the platform computes its size and SHA-256 and signs it; the same
// version twice is a conflict; bad input is refused and stores nothing; admins promote to stable;
// devices download with their link or their MQTT login, whole or by byte ranges; other companies
// see nothing.
import { createHash, randomBytes, verify } from 'node:crypto';
import { downloadUrl } from '../ota/download-url';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

const MAX = 1024 * 1024;
let s: Stack;
let manufacturer: string;
let viewer: string;
let admin: string;
let device: Provisioning;
let foreignDevice: Provisioning;

async function json<T = any>(res: Response, want: number): Promise<T> {
  const body = await res.text();
  if (res.status !== want) throw new Error(`${res.url}: ${res.status} ${body}`);
  return (body ? JSON.parse(body) : null) as T;
}

/** The fields in order, then the file (as curl -F sends them). */
function form(fields: Record<string, string>, file?: Buffer, fileField = 'file'): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (file) f.append(fileField, new Blob([file]), 'image.bin');
  return f;
}

const upload = (token: string, body: FormData | string, headers: Record<string, string> = {}) => s.api('/api/v1/firmware', { method: 'POST', token, body, headers });

async function provisioned(companyId: string): Promise<Provisioning> {
  const batch = await json<{ id: string }>(await s.api('/api/v1/batches', { method: 'POST', json: { companyId, name: 'firmware', count: 1, model: 'ev-charger' } }), 201);
  await eventually(async () => (await json(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready');
  return provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text(), { broker: testEnv().mqttUrl })[0]!;
}

beforeAll(async () => {
  s = await startStack({ firmwareMaxBytes: MAX });
  manufacturer = await s.token('manufacturer');
  viewer = await s.token('viewer');
  admin = await s.token('admin');
  device = await provisioned(s.companyId);
  foreignDevice = await provisioned(await s.company('another company'));
}, 120_000);
afterAll(() => s?.stop());

describe('upload', () => {
  const image = randomBytes(300_000);
  let release: any;

  it('stores, hashes and signs an image; the signature verifies with the served public key', async () => {
    const res = await upload(manufacturer, form({ version: '1.2.0', model: 'ev-charger', notes: 'fixes the relay' }, image));
    release = await json(res, 201);
    expect(res.headers.get('location')).toBe(`/api/v1/firmware/${release.id}`);
    expect(release).toMatchObject({ model: 'ev-charger', version: '1.2.0', size: image.length, sha256: createHash('sha256').update(image).digest('hex'), channel: 'staging', notes: 'fixes the relay', companyId: s.companyId });
    const key = await (await s.api('/api/v1/firmware/public-key', { token: null })).text();
    expect(key).toBe(s.firmwarePublicKey);
    expect(verify(null, image, key, Buffer.from(release.signature, 'base64'))).toBe(true);
    const tampered = Buffer.from(image);
    tampered[7] ^= 0x40;
    expect(verify(null, tampered, key, Buffer.from(release.signature, 'base64'))).toBe(false);
    expect(await json(await s.api(`/api/v1/firmware/${release.id}`, { token: viewer }), 200)).toEqual(release);
    const audit = await json(await s.api(`/api/v1/audit?companyId=${s.companyId}&limit=20`), 200);
    expect(audit.items.some((e: any) => e.action === 'firmware.uploaded' && e.target?.id === release.id)).toBe(true);
  });

  it('refuses the same model and version again (409), and stores nothing for it', async () => {
    const res = await upload(manufacturer, form({ version: '1.2.0', model: 'ev-charger' }, randomBytes(1000)));
    expect((await json(res, 409)).error.code).toBe('firmware_exists');
    const list = await json(await s.api('/api/v1/firmware?model=ev-charger', { token: manufacturer }), 200);
    expect(list.items.map((r: any) => r.version)).toEqual(['1.2.0']);
  });

  it.each([
    ['no version', form({ model: 'ev-charger' }, Buffer.alloc(10)), 400, /version/],
    ['not semver', form({ version: 'v1.2', model: 'ev-charger' }, Buffer.alloc(10)), 400, /semantic version/],
    ['a bad model', form({ version: '1.0.0', model: 'ev charger!' }, Buffer.alloc(10)), 400, /model/],
    ['an unknown field', form({ version: '1.0.0', model: 'ev-charger', channel: 'stable' }, Buffer.alloc(10)), 400, /unknown field 'channel'/],
    ['no file', form({ version: '1.0.0', model: 'ev-charger' }), 400, /part named 'file'/],
    ['a file under another name', form({ version: '1.0.0', model: 'ev-charger' }, Buffer.alloc(10), 'image'), 400, /goes in 'file'/],
    ['an empty image', form({ version: '1.0.0', model: 'ev-charger' }, Buffer.alloc(0)), 400, /empty/],
    ['an image past FIRMWARE_MAX_BYTES', form({ version: '1.0.0', model: 'ev-charger' }, randomBytes(MAX + 1)), 413, /FIRMWARE_MAX_BYTES/],
  ])('refuses %s, keeping nothing', async (_what, body, status, message) => {
    const res = await upload(manufacturer, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as any).error.message).toMatch(message);
    const list = await json(await s.api('/api/v1/firmware', { token: manufacturer }), 200);
    expect(list.items.map((r: any) => r.version)).toEqual(['1.2.0']);
  });

  it('refuses a body that is not multipart, and a field sent after the file', async () => {
    expect((await upload(manufacturer, JSON.stringify({ version: '1.0.0' }), { 'content-type': 'application/json' })).status).toBe(400);
    const after = new FormData();
    after.append('version', '1.3.0');
    after.append('file', new Blob([Buffer.alloc(100)]));
    after.append('model', 'ev-charger');
    const res = await upload(manufacturer, after);
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.message).toMatch(/send the fields first/);
  });

  it('lets only those who may upload do it; other companies see nothing', async () => {
    expect((await upload(viewer, form({ version: '9.0.0', model: 'ev-charger' }, Buffer.alloc(10)))).status).toBe(403);
    const stranger = await s.member('admin', await s.company('stranger'));
    expect((await s.api(`/api/v1/firmware/${release.id}`, { token: stranger.token })).status).toBe(404);
    expect((await json(await s.api('/api/v1/firmware', { token: stranger.token }), 200)).items).toEqual([]);
    expect((await upload(stranger.token, form({ version: '1.0.0', model: 'ev-charger', companyId: s.companyId }, Buffer.alloc(10)))).status).toBe(404);
    expect((await s.api(`/api/v1/firmware/${release.id}/promote`, { method: 'POST', token: stranger.token, json: { channel: 'stable' } })).status).toBe(404);
  });

  it('promotes to stable by an admin only; again changes nothing', async () => {
    expect((await s.api(`/api/v1/firmware/${release.id}/promote`, { method: 'POST', token: manufacturer, json: { channel: 'stable' } })).status).toBe(403);
    const promoted = await json(await s.api(`/api/v1/firmware/${release.id}/promote`, { method: 'POST', token: admin, json: { channel: 'stable' } }), 200);
    expect(promoted).toMatchObject({ channel: 'stable', promotedBy: expect.any(String) });
    expect(await json(await s.api(`/api/v1/firmware/${release.id}/promote`, { method: 'POST', token: admin, json: { channel: 'stable' } }), 200)).toEqual(promoted);
    expect((await json(await s.api('/api/v1/firmware?channel=stable', { token: viewer }), 200)).items.map((r: any) => r.id)).toEqual([release.id]);
    expect((await s.api(`/api/v1/firmware/${release.id}/promote`, { method: 'POST', token: admin, json: { channel: 'beta' } })).status).toBe(400);
  });

  describe('download', () => {
    const link = (deviceId: string, expires = Math.floor(Date.now() / 1000) + 600, releaseId = release.id) => downloadUrl(s.baseUrl, s.credentials, { releaseId, deviceId, expires });
    const basic = (p: Provisioning, secret = p.secret) => `Basic ${Buffer.from(`${p.mqttUsername}:${secret}`).toString('base64')}`;

    it('gives a device its image by its link, whole and by ranges (an interrupted download resumes)', async () => {
      const whole = await fetch(link(device.deviceId));
      expect(whole.status).toBe(200);
      expect(whole.headers.get('accept-ranges')).toBe('bytes');
      expect(whole.headers.get('etag')).toBe(`"${release.sha256}"`);
      expect(Buffer.from(await whole.arrayBuffer()).equals(image)).toBe(true);
      const first = Buffer.from(await (await fetch(link(device.deviceId), { headers: { range: 'bytes=0-99999' } })).arrayBuffer());
      const rest = await fetch(link(device.deviceId), { headers: { range: 'bytes=100000-', 'if-range': `"${release.sha256}"` } });
      expect(rest.status).toBe(206);
      expect(rest.headers.get('content-range')).toBe(`bytes 100000-${image.length - 1}/${image.length}`);
      expect(Buffer.concat([first, Buffer.from(await rest.arrayBuffer())]).equals(image)).toBe(true);
      const tail = await fetch(link(device.deviceId), { headers: { range: 'bytes=-10' } });
      expect(Buffer.from(await tail.arrayBuffer()).equals(image.subarray(-10))).toBe(true);
      const beyond = await fetch(link(device.deviceId), { headers: { range: `bytes=${image.length}-` } });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${image.length}`);
    });

    it('gives it by HTTP Basic auth with the device MQTT login too', async () => {
      const res = await fetch(`${s.baseUrl}/api/v1/firmware/${release.id}/image`, { headers: { authorization: basic(device) } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
    });

    it('refuses expired, altered or borrowed links, wrong secrets, and devices of other companies', async () => {
      const expired = await fetch(link(device.deviceId, Math.floor(Date.now() / 1000) - 1));
      expect(expired.status).toBe(401);
      expect(((await expired.json()) as any).error.message).toMatch(/expired/);
      const u = new URL(link(device.deviceId));
      u.searchParams.set('device', foreignDevice.deviceId); // another device's ID on this device's link
      expect((await fetch(u)).status).toBe(401);
      expect((await fetch(`${s.baseUrl}/api/v1/firmware/${release.id}/image`)).status).toBe(401);
      expect((await fetch(`${s.baseUrl}/api/v1/firmware/${release.id}/image`, { headers: { authorization: basic(device, 'WRONGSECRET0000000000000000') } })).status).toBe(401);
      // A device of another company: its own valid link and login get nothing of this company's.
      expect((await fetch(link(foreignDevice.deviceId))).status).toBe(404);
      expect((await fetch(`${s.baseUrl}/api/v1/firmware/${release.id}/image`, { headers: { authorization: basic(foreignDevice) } })).status).toBe(404);
      const other = new URL(link(device.deviceId));
      other.pathname = other.pathname.replace(release.id, 'AAAAAAAAAAAAAAAA'); // a link is for one release
      expect((await fetch(other)).status).toBe(401);
      expect((await fetch(link(device.deviceId, undefined, 'AAAAAAAAAAAAAAAA'))).status).toBe(404); // its own link, no such release
    });
  });
});
