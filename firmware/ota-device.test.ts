// OTA on one device, end to end: a Mosquitto of the test's own, a real local HTTP server with the
// image, real Ed25519 keys. The platform's side is played by a plain MQTT client.
import { generateKeyPairSync, createHash, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { buildTestImage, parseOtaReport, type OtaReportMessage, type OtaRequestMessage } from '../domain/ota';
import { newDeviceId } from '../domain/ids';
import { topics } from '../domain/topics';
import { Device, type DeviceOptions } from './device';
import { ImageServer, type ServedImage } from './testing/image-server';
import { plainClient, TreeWatcher } from './testing/mqtt-watch';
import { OwnBroker } from './testing/own-broker';
import { FIRMWARE_VERSION } from './version';

const FAST = { retries: 3, backoff: { initialMs: 10, maxMs: 50 }, idleTimeoutMs: 3_000 };
const SIZE = 200 * 1024;

let broker: OwnBroker;
let server: ImageServer;
let platform: MqttClient;
let privateKey: KeyObject;
let publicPem: string;
const running: Device[] = [];
const watchers: TreeWatcher[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  broker = await OwnBroker.create();
  await broker.start();
  server = await ImageServer.start();
  platform = await plainClient(broker.url);
  const keys = generateKeyPairSync('ed25519');
  privateKey = keys.privateKey;
  publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
});

afterEach(async () => {
  server.release();
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await Promise.all(watchers.splice(0).map((w) => w.close()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

afterAll(async () => {
  await platform.endAsync();
  await server.close();
  await broker.dispose();
});

function stateDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-ota-'));
  dirs.push(d);
  return d;
}

async function boot(opts: Partial<DeviceOptions> = {}): Promise<{ d: Device; w: TreeWatcher; id: string }> {
  const id = opts.deviceId ?? newDeviceId();
  const w = await TreeWatcher.open(broker.url, topics.deviceAll(id));
  watchers.push(w);
  const d = new Device({ deviceId: id, secret: 'pw', mqttUrl: broker.url, model: 'lock', publishIntervalMs: 60_000, rebootDelayMs: 50, otaPublicKey: publicPem, otaTuning: FAST, ...opts });
  running.push(d);
  d.start();
  await d.waitConnected();
  await w.value(topics.state(id), 'ready');
  return { d, w, id };
}

let served = 0;
/** An image on the server and the request that announces it. */
function release(id: string, o: { version: string; healthCheck?: 'pass' | 'fail'; size?: number; image?: Buffer; serve?: Partial<ServedImage>; announce?: Partial<OtaRequestMessage> }) {
  const image = o.image ?? buildTestImage({ version: o.version, size: o.size ?? SIZE, healthCheck: o.healthCheck });
  const p = `/fw/${++served}`;
  // The device's MQTT login opens the download (the contract's second way).
  const url = server.serve(p, { bytes: image, auth: { username: id.toLowerCase(), password: 'pw' }, ...o.serve });
  const request: OtaRequestMessage = {
    updateId: `U${served}`,
    version: o.version,
    url,
    size: image.length,
    sha256: createHash('sha256').update(image).digest('hex'),
    signature: sign(null, image, privateKey).toString('base64'),
    ...o.announce,
  };
  return { request, path: p, image };
}

function send(id: string, body: unknown): Promise<unknown> {
  return platform.publishAsync(topics.otaSet(id), typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
}

function reports(w: TreeWatcher, id: string, updateId?: string): OtaReportMessage[] {
  const t = topics.otaReport(id);
  return w.history
    .filter((h) => h.topic === t)
    .map((h) => {
      expect(h.retain).toBe(false);
      const r = parseOtaReport(h.payload);
      expect(r).not.toBeNull(); // every report the device sends is valid by the one parser
      return r!;
    })
    .filter((r) => updateId === undefined || r.updateId === updateId);
}

const states = (rs: OtaReportMessage[]) => rs.map((r) => r.state).filter((s, i, a) => s !== a[i - 1]); // progress repeats collapsed

function finalReport(w: TreeWatcher, id: string, updateId: string, timeoutMs = 10_000): Promise<OtaReportMessage> {
  return w.until(() => reports(w, id, updateId).find((r) => r.state === 'updated' || r.state === 'failed'), timeoutMs, `final report of ${updateId}`);
}

function logged(d: Device, message: string): boolean {
  return d.logs(200).some((l) => l.message === message);
}

const fwVersion = (w: TreeWatcher, id: string) => w.get(topics.firmwareVersion(id));

describe('an update that succeeds', () => {
  it('downloads with Basic auth, verifies, installs, reboots for real, and runs the target: $fw/version retained', async () => {
    const { d, w, id } = await boot();
    expect(fwVersion(w, id)).toBe(FIRMWARE_VERSION);
    const { request, path: p } = release(id, { version: '1.1.0' });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'updated' });
    const rs = reports(w, id, request.updateId);
    expect(states(rs)).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', 'updated']);
    const progress = rs.filter((r) => r.state === 'downloading').map((r) => r.progress);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(100);
    expect(progress).toEqual([...progress].sort((a, b) => a! - b!));

    // A real reboot: it said goodbye, came back, and announced the new version (retained).
    expect(w.states(id)).toEqual(['init', 'ready', 'disconnected', 'init', 'ready']);
    expect(d.stats.connects).toBe(2);
    expect(fwVersion(w, id)).toBe('1.1.0');
    expect(d.firmwareVersion).toBe('1.1.0');
    expect(d.snapshot().ota).toMatchObject({ slot: 'b', version: '1.1.0', trial: false, update: null });
    const late = await TreeWatcher.open(broker.url, topics.firmwareVersion(id));
    watchers.push(late);
    await late.value(topics.firmwareVersion(id), '1.1.0');
    expect(late.history[0]!.retain).toBe(true);
    // `updated` came after the new version was out.
    const order = w.history.map((h) => h.topic + ' ' + h.payload);
    expect(order.lastIndexOf(`${topics.firmwareVersion(id)} 1.1.0`)).toBeLessThan(order.findIndex((x) => x.includes('"state":"updated"')));
    expect(server.requestsFor(p)).toHaveLength(1);
    expect(server.requestsFor(p)[0]!.status).toBe(200);

    // The same request again (QoS 1 delivers twice; a platform retries): answered, not started again.
    await send(id, request);
    await w.until(() => reports(w, id, request.updateId).filter((r) => r.state === 'updated').length === 2, 5_000, 'the repeat answered');
    expect(server.requestsFor(p)).toHaveLength(1);
    expect(d.ota.stats).toMatchObject({ started: 1, updated: 1, failed: 0 });
  });

  it('a request for the version already running is `updated` at once, with no download', async () => {
    const { d, w, id } = await boot();
    const { request, path: p } = release(id, { version: FIRMWARE_VERSION });
    await send(id, request);
    await finalReport(w, id, request.updateId);
    expect(reports(w, id, request.updateId)).toEqual([{ updateId: request.updateId, state: 'updated' }]);
    expect(server.requestsFor(p)).toHaveLength(0);
    expect(d.stats.connects).toBe(1);
  });

  it('resumes an interrupted download with Range (the server cuts the connection the first time), from the state directory', async () => {
    const dir = stateDir();
    const { d, w, id } = await boot({ stateDir: dir });
    const { request, path: p } = release(id, { version: '1.2.0', serve: { cutFirstAfter: 70_000 } });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'updated' });
    const reqs = server.requestsFor(p);
    // Resumed from what it had written when the connection broke (at most what the server sent).
    const resumedAt = (d.logs(200).find((l) => l.message === 'update downloaded')?.fields as { resumedAt: number[] }).resumedAt;
    expect(resumedAt).toHaveLength(1);
    expect(resumedAt[0]).toBeGreaterThan(0);
    expect(resumedAt[0]).toBeLessThanOrEqual(70_000);
    expect(reqs.map((r) => r.range)).toEqual([undefined, `bytes=${resumedAt[0]}-`]);
    expect(reqs.map((r) => r.status)).toEqual([200, 206]);
    expect(reqs[1]!.authorization).toBe(reqs[0]!.authorization);
    expect(fwVersion(w, id)).toBe('1.2.0');
    // The image went into slot b's file; the download file is gone.
    expect(fs.existsSync(path.join(dir, `${id}.slot-b`))).toBe(true);
    expect(fs.existsSync(path.join(dir, `${id}.ota-download`))).toBe(false);
    expect(d.logs(200).find((l) => l.message === 'update downloaded')?.fields).toMatchObject({ attempts: 2 });
  });

  it('a device restarted mid-download resumes it from its state directory and finishes it', async () => {
    const dir = stateDir();
    const id = newDeviceId();
    const first = await boot({ deviceId: id, stateDir: dir });
    const { request, path: p } = release(id, { version: '1.3.0', serve: { stallAfter: 120_000 } });
    await send(id, request);
    await first.w.until(() => reports(first.w, id, request.updateId).find((r) => r.progress === 50), 5_000, '50 %');
    await first.d.stop(); // powered off with the download half done
    expect(JSON.parse(fs.readFileSync(path.join(dir, `${id}.ota.json`), 'utf8'))).toMatchObject({ current: { request: { updateId: request.updateId }, state: 'downloading' } });
    const partial = fs.statSync(path.join(dir, `${id}.ota-download`)).size;
    expect(partial).toBeGreaterThanOrEqual(100_000);
    server.release();

    const second = await boot({ deviceId: id, stateDir: dir });
    expect(await finalReport(second.w, id, request.updateId)).toMatchObject({ state: 'updated' });
    expect(server.requestsFor(p).at(-1)!.range).toBe(`bytes=${partial}-`);
    expect(second.d.firmwareVersion).toBe('1.3.0');

    // And a third start keeps running what it installed.
    await second.d.stop();
    const third = await boot({ deviceId: id, stateDir: dir, firmwareVersion: '9.9.9' });
    expect(third.d.firmwareVersion).toBe('1.3.0');
    expect(fwVersion(third.w, id)).toBe('1.3.0');
  });
});

describe('images that are refused', () => {
  it('a SHA-256 that does not match', async () => {
    const { d, w, id } = await boot();
    const { request } = release(id, { version: '1.4.0', announce: { sha256: 'cd'.repeat(32) } });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'sha256-mismatch' });
    expect(states(reports(w, id, request.updateId))).toEqual(['downloading', 'downloaded', 'failed']);
    expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);
    expect(d.stats.connects).toBe(1); // no reboot
  });

  it('a tampered image whose SHA-256 was recomputed: the signature is not the platform key\'s', async () => {
    const { d, w, id } = await boot();
    const genuine = buildTestImage({ version: '1.5.0', size: SIZE });
    const tampered = Buffer.from(genuine);
    tampered[SIZE - 1] ^= 0xff;
    const { request } = release(id, {
      version: '1.5.0',
      image: tampered,
      announce: { sha256: createHash('sha256').update(tampered).digest('hex'), signature: sign(null, genuine, privateKey).toString('base64') },
    });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'signature-invalid' });
    expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);

    // Signed by another key: the same.
    const other = generateKeyPairSync('ed25519').privateKey;
    const r2 = release(id, { version: '1.5.1' });
    await send(id, { ...r2.request, signature: sign(null, r2.image, other).toString('base64') });
    expect(await finalReport(w, id, r2.request.updateId)).toMatchObject({ state: 'failed', error: 'signature-invalid' });
  });

  it('an image of another size than announced', async () => {
    const { w, id } = await boot();
    const { request } = release(id, { version: '1.6.0' });
    await send(id, { ...request, size: request.size + 10 });
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'size-mismatch' });
  });

  it('an image the server does not give (401 with the wrong login: not retried)', async () => {
    const { w, id } = await boot();
    const { request, path: p } = release(id, { version: '1.6.1', serve: { auth: { username: 'someone-else', password: 'x' } } });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'failed', error: 'download-failed' });
    expect(server.requestsFor(p)).toHaveLength(1);
  });

  it('a signed image whose header names another version', async () => {
    const { w, id } = await boot();
    const image = buildTestImage({ version: '7.0.0', size: SIZE });
    const { request } = release(id, { version: '1.7.0', image });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'failed', error: 'image-invalid' });
    expect(states(reports(w, id, request.updateId))).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'failed']);
  });

  it('an image larger than the slot is refused before downloading', async () => {
    const { w, id } = await boot({ otaTuning: { ...FAST, slotBytes: SIZE - 1 } });
    const { request, path: p } = release(id, { version: '1.7.1' });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'image-too-large' });
    expect(server.requestsFor(p)).toHaveLength(0);
  });

  it('without the platform key every request is refused no-public-key', async () => {
    const { d, w, id } = await boot({ otaPublicKey: null });
    const { request, path: p } = release(id, { version: '1.8.0' });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'no-public-key' });
    expect(server.requestsFor(p)).toHaveLength(0);
    expect(d.ota.stats.refused).toBe(1);
  });
});

describe('health check and rollback', () => {
  it('a new firmware that fails its health check rolls back: the old version runs, $fw/version never showed the new one', async () => {
    const dir = stateDir();
    const { d, w, id } = await boot({ stateDir: dir });
    const { request } = release(id, { version: '2.0.0', healthCheck: 'fail' });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'health-check-failed' });
    expect(states(reports(w, id, request.updateId))).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', 'failed']);
    expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);
    expect(fwVersion(w, id)).toBe(FIRMWARE_VERSION);
    expect(w.history.filter((h) => h.topic === topics.firmwareVersion(id)).map((h) => h.payload)).not.toContain('2.0.0');
    // It booted the new slot, failed the check, and rebooted into the old one.
    expect(logged(d, 'the new firmware failed its health check: rolling back')).toBe(true);
    expect(d.snapshot().ota).toMatchObject({ slot: 'a', trial: false });
    expect(fs.existsSync(path.join(dir, `${id}.slot-b`))).toBe(false);
    expect(w.states(id)).toEqual(['init', 'ready', 'disconnected', 'init', 'ready']);

    // Fine afterwards: a good image installs into the slot the failed one left.
    const good = release(id, { version: '2.0.1' });
    await send(id, good.request);
    expect(await finalReport(w, id, good.request.updateId)).toMatchObject({ state: 'updated' });
    expect(fwVersion(w, id)).toBe('2.0.1');
  });

  it('failure injection: a device whose health check fails whatever the image says', async () => {
    const { d, w, id } = await boot({ otaFailHealthCheck: true });
    const { request } = release(id, { version: '2.1.0' });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'failed', error: 'health-check-failed' });
    expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);
  });

  // The trial boot cannot reach the platform: a broker of the test's own, gone with the reboot.
  async function trialWithoutBroker(opts: Partial<DeviceOptions>) {
    const own = await OwnBroker.create();
    await own.start();
    const id = newDeviceId();
    const d = new Device({ deviceId: id, secret: 'pw', mqttUrl: own.url, model: 'lock', publishIntervalMs: 60_000, rebootDelayMs: 50, otaPublicKey: publicPem, backoff: { initialMs: 50, maxMs: 200 }, connectTimeoutMs: 500, ...opts });
    running.push(d);
    d.start();
    await d.waitConnected();
    const client = await plainClient(own.url);
    const { request } = release(id, { version: '2.2.0' });
    d.on('state', ({ state }) => {
      if (state === 'disconnected') void own.stop(); // the network goes as it reboots into the new slot
    });
    await client.publishAsync(topics.otaSet(id), JSON.stringify(request), { qos: 1 });
    await d.waitFor('log', 10_000, (l) => l.message === 'booting the new firmware on trial');
    client.end(true);
    return { own, id, d, request };
  }

  it('a trial boot that does not reach the broker in time rolls back and reports failed once connected', async () => {
    const dir = stateDir();
    const { own, id, d, request } = await trialWithoutBroker({ stateDir: dir, otaTuning: { ...FAST, trialTimeoutMs: 300 } });
    try {
      expect(d.firmwareVersion).toBe('2.2.0'); // on trial
      await d.waitFor('ota', 5_000, (r) => r.state === 'failed');
      expect(logged(d, 'the new firmware did not reach the platform in time: rolling back')).toBe(true);
      expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);
      expect(d.ota.finished(request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'health-check-failed', unsent: true });
      await own.start();
      await d.waitFor('connected', 10_000);
      // The final report went out (acknowledged) with the connection.
      await new Promise((r) => setTimeout(r, 200));
      expect(d.ota.finished(request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'health-check-failed' });
      const w = await TreeWatcher.open(own.url, topics.deviceAll(id));
      watchers.push(w);
      await w.value(topics.firmwareVersion(id), FIRMWARE_VERSION);
    } finally {
      await d.stop();
      await own.dispose();
    }
  });

  it('a trial boot powered off before it confirmed rolls back at the next start', async () => {
    const dir = stateDir();
    const { own, id, d, request } = await trialWithoutBroker({ stateDir: dir });
    let again: Device | null = null;
    try {
      d.kill(); // power lost during the trial boot
      expect(JSON.parse(fs.readFileSync(path.join(dir, `${id}.ota.json`), 'utf8'))).toMatchObject({ slots: { active: 'b', trial: true } });
      await own.start();
      const w = await TreeWatcher.open(own.url, topics.deviceAll(id));
      watchers.push(w);
      again = new Device({ deviceId: id, secret: 'pw', mqttUrl: own.url, model: 'lock', publishIntervalMs: 60_000, otaPublicKey: publicPem, stateDir: dir });
      running.push(again);
      again.start();
      expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'health-check-failed' });
      expect(again.firmwareVersion).toBe(FIRMWARE_VERSION);
      expect(fwVersion(w, id)).toBe(FIRMWARE_VERSION);
      expect(logged(again, 'the new firmware never confirmed its trial boot: rolled back')).toBe(true);
    } finally {
      await again?.stop(); // before its broker goes
      await own.dispose();
    }
  });
});

describe('one update at a time', () => {
  it('a different update while one runs is refused busy; the first goes on; a repeat of the first is answered with where it stands', async () => {
    const { d, w, id } = await boot();
    const a = release(id, { version: '3.0.0', serve: { stallAfter: 60_000 } });
    await send(id, a.request);
    await w.until(() => reports(w, id, a.request.updateId).find((r) => r.progress === 20), 5_000, '20 %');
    const b = release(id, { version: '3.1.0' });
    await send(id, b.request);
    expect(await finalReport(w, id, b.request.updateId)).toEqual({ updateId: b.request.updateId, state: 'failed', error: 'busy' });
    expect(server.requestsFor(b.path)).toHaveLength(0);

    const before = reports(w, id, a.request.updateId).length;
    await send(id, a.request); // again
    await w.until(() => reports(w, id, a.request.updateId).length > before, 5_000, 'the repeat answered');
    expect(reports(w, id, a.request.updateId).at(-1)).toEqual({ updateId: a.request.updateId, state: 'downloading', progress: 20 });
    expect(server.requestsFor(a.path)).toHaveLength(1);

    server.release(); // the stall ends as a cut connection: resumed
    expect(await finalReport(w, id, a.request.updateId, 15_000)).toMatchObject({ state: 'updated' });
    expect(server.requestsFor(a.path).at(-1)!.range).toBe('bytes=60000-');
    expect(d.ota.stats).toMatchObject({ started: 1, updated: 1, refused: 1 });
  });
});

describe('cancel (the `{updateId, cancel: true}` extension)', () => {
  it('before installing: aborts and reports failed/cancelled; nothing installed, the download discarded', async () => {
    const dir = stateDir();
    const { d, w, id } = await boot({ stateDir: dir });
    const { request } = release(id, { version: '4.0.0', serve: { stallAfter: 100_000 } });
    await send(id, request);
    await w.until(() => reports(w, id, request.updateId).find((r) => r.progress === 40), 5_000, '40 %');
    await send(id, { updateId: request.updateId, cancel: true });
    expect(await finalReport(w, id, request.updateId)).toEqual({ updateId: request.updateId, state: 'failed', error: 'cancelled' });
    expect(d.firmwareVersion).toBe(FIRMWARE_VERSION);
    expect(fs.existsSync(path.join(dir, `${id}.ota-download`))).toBe(false);
    expect(d.snapshot().ota.update).toBeNull();
    // A cancel of a finished or an unknown update changes nothing.
    await send(id, { updateId: request.updateId, cancel: true });
    await send(id, { updateId: 'NOPE', cancel: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(reports(w, id).filter((r) => r.state === 'failed')).toHaveLength(1);
    expect(logged(d, 'cancel ignored: the update has finished')).toBe(true);
    expect(logged(d, 'cancel ignored: no such update')).toBe(true);
  });

  it('from installing on it is too late: logged, the update goes on', async () => {
    const { d, w, id } = await boot();
    const { request } = release(id, { version: '4.1.0' });
    // Handed to the device at the very moment it reports `installing` (over MQTT the window is too short to hit reliably).
    d.on('ota', (r) => {
      if (r.state === 'installing') d.ota.onMessage(Buffer.from(JSON.stringify({ updateId: request.updateId, cancel: true })));
    });
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'updated' });
    expect(d.firmwareVersion).toBe('4.1.0');
    expect(d.logs(200).find((l) => l.message === 'cancel too late: the update is installing')?.fields).toEqual({ updateId: request.updateId, state: 'installing' });
    expect(states(reports(w, id, request.updateId))).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', 'updated']);
  });
});

describe('malformed messages', () => {
  it('are dropped, counted and logged; the device stays up and takes a good request afterwards', async () => {
    const { d, w, id } = await boot();
    const { request } = release(id, { version: '5.0.0' });
    const garbage = ['', 'not json', '[]', '{}', JSON.stringify({ ...request, version: 'latest' }), JSON.stringify({ ...request, url: 'ftp://x/y' }), JSON.stringify({ ...request, size: -5 }), JSON.stringify({ ...request, sha256: 'xyz' }), JSON.stringify({ updateId: 'U', cancel: 1 }), Buffer.alloc(10_000, 0x7b).toString()];
    for (const g of garbage) await send(id, g);
    await w.until(() => d.ota.stats.malformed === garbage.length - 1 || undefined, 5_000, 'all counted'); // the empty payload is a cleared retained message
    expect(d.ota.stats).toMatchObject({ received: garbage.length - 1, malformed: garbage.length - 1, started: 0 });
    expect(d.logs(200).filter((l) => l.message === 'ota message rejected: malformed')).toHaveLength(garbage.length - 1);
    expect(reports(w, id)).toEqual([]);
    expect(d.isOnline).toBe(true);
    await send(id, request);
    expect(await finalReport(w, id, request.updateId)).toMatchObject({ state: 'updated' });
  });
});
