// OTA across a fleet: 'instant' (every step at once, the new `$fw/version` retained, no download,
// no reboot) for hundreds of devices, and 'full' (real downloads into memory, verification, real
// reboots) for a few; failure injection by device ID.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { buildTestImage, parseOtaReport, type OtaReportMessage, type OtaRequestMessage } from '../domain/ota';
import { parseTopic, topics } from '../domain/topics';
import { Fleet, generateCredentials } from './fleet';
import { ImageServer } from './testing/image-server';
import { plainClient } from './testing/mqtt-watch';
import { OwnBroker } from './testing/own-broker';
import { FIRMWARE_VERSION } from './version';

let broker: OwnBroker;
let server: ImageServer;
let platform: MqttClient;
const listeners: MqttClient[] = [];
const keys = generateKeyPairSync('ed25519');
const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
/** Per device: its reports in order, and its retained `$fw/version`. */
const seen = new Map<string, OtaReportMessage[]>();
const versions = new Map<string, string>();

beforeAll(async () => {
  broker = await OwnBroker.create();
  await broker.start();
  server = await ImageServer.start();
  platform = await plainClient(broker.url);
});

afterAll(async () => {
  await Promise.all(listeners.splice(0).map((c) => c.endAsync()));
  await platform.endAsync();
  await server.close();
  await broker.dispose();
});

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The platform's view of the reports and versions. Several subscribers, 25 devices each: one client
 * taking 200 devices' reports at QoS 1 at once would overflow Mosquitto's queue for it (1000 messages by default).
 */
async function listen(deviceIds: string[]): Promise<void> {
  for (let i = 0; i < deviceIds.length; i += 25) {
    const c = await plainClient(broker.url);
    listeners.push(c);
    c.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t?.kind === 'ota-report') {
        const r = parseOtaReport(payload);
        if (!r) throw new Error(`malformed report ${payload.toString()}`);
        seen.set(t.deviceId, [...(seen.get(t.deviceId) ?? []), r]);
      } else if (t?.kind === 'device-attribute' && t.attribute === '$fw/version') {
        versions.set(t.deviceId, payload.toString());
      }
    });
    await c.subscribeAsync(deviceIds.slice(i, i + 25).flatMap((id) => [topics.otaReport(id), topics.firmwareVersion(id)]), { qos: 1 });
  }
}

const finalOf = (id: string) => seen.get(id)?.find((r) => r.state === 'updated' || r.state === 'failed');
const statesOf = (id: string) => (seen.get(id) ?? []).map((r) => r.state).filter((s, i, a) => s !== a[i - 1]);

function request(updateId: string, image: Buffer, url: string, version: string): OtaRequestMessage {
  return { updateId, version, url, size: image.length, sha256: createHash('sha256').update(image).digest('hex'), signature: sign(null, image, keys.privateKey).toString('base64') };
}

it("instant mode: 200 devices report every step and retain the new $fw/version at once; injected health-check failures roll back", async () => {
  const creds = generateCredentials(200);
  const failing = creds.slice(0, 3).map((c) => c.deviceId);
  await listen(creds.map((c) => c.deviceId));
  const fleet = new Fleet({ devices: creds, mqttUrl: broker.url, publishIntervalMs: 600_000, connectRate: 1_000, ota: 'instant', otaPublicKey: publicPem, otaFailHealthCheck: failing });
  try {
    fleet.start();
    await fleet.waitConnected(200, 20_000);
    expect(fleet.firmwareVersions()).toEqual({ [FIRMWARE_VERSION]: 200 });
    // The platform's image: never fetched in instant mode.
    const image = buildTestImage({ version: '2.0.0', size: 1024 });
    const url = server.serve('/fleet/2.0.0', { bytes: image });
    await Promise.all(creds.map((c) => platform.publishAsync(topics.otaSet(c.deviceId), JSON.stringify(request(`F-${c.deviceId}`, image, url, '2.0.0')), { qos: 1 })));
    await until(() => creds.every((c) => finalOf(c.deviceId)), 'every final report');

    for (const c of creds) {
      const fails = failing.includes(c.deviceId);
      expect(finalOf(c.deviceId)).toEqual(fails ? { updateId: `F-${c.deviceId}`, state: 'failed', error: 'health-check-failed' } : { updateId: `F-${c.deviceId}`, state: 'updated' });
      expect(statesOf(c.deviceId)).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', fails ? 'failed' : 'updated']);
    }
    await until(() => creds.filter((c) => versions.get(c.deviceId) === '2.0.0').length === 197, 'the new versions retained');
    for (const id of failing) expect(versions.get(id)).toBe(FIRMWARE_VERSION);
    expect(fleet.firmwareVersions()).toEqual({ '2.0.0': 197, [FIRMWARE_VERSION]: 3 });
    expect(fleet.otaStats()).toMatchObject({ received: 200, malformed: 0, started: 200, updated: 197, failed: 3 });
    expect(server.requestsFor('/fleet/2.0.0')).toHaveLength(0);
    expect(fleet.stats()).toMatchObject({ connects: 200, reconnects: 0 }); // nobody left the network
  } finally {
    await fleet.stop();
  }
}, 60_000);

it('full mode: devices download into memory at once, verify, reboot for real; an injected failure rolls back', async () => {
  const creds = generateCredentials(10);
  const failing = [creds[0]!.deviceId];
  await listen(creds.map((c) => c.deviceId));
  const fleet = new Fleet({ devices: creds, mqttUrl: broker.url, publishIntervalMs: 600_000, ota: 'full', otaPublicKey: publicPem, otaFailHealthCheck: failing, rebootDelayMs: 50 });
  try {
    fleet.start();
    await fleet.waitConnected(10, 20_000);
    const image = buildTestImage({ version: '3.0.0', size: 512 * 1024 });
    const url = server.serve('/fleet/3.0.0', { bytes: image });
    await Promise.all(creds.map((c) => platform.publishAsync(topics.otaSet(c.deviceId), JSON.stringify(request(`G-${c.deviceId}`, image, url, '3.0.0')), { qos: 1 })));
    await until(() => creds.every((c) => finalOf(c.deviceId)), 'every final report');
    for (const c of creds) {
      const fails = failing.includes(c.deviceId);
      expect(finalOf(c.deviceId)).toMatchObject(fails ? { state: 'failed', error: 'health-check-failed' } : { state: 'updated' });
      expect(statesOf(c.deviceId)).toEqual(['downloading', 'downloaded', 'verified', 'installing', 'rebooting', fails ? 'failed' : 'updated']);
    }
    expect(server.requestsFor('/fleet/3.0.0')).toHaveLength(10);
    expect(fleet.firmwareVersions()).toEqual({ '3.0.0': 9, [FIRMWARE_VERSION]: 1 });
    await fleet.waitConnected(10, 10_000); // all back after their reboots
    expect(fleet.stats().connects).toBe(20);
    expect(versions.get(failing[0]!)).toBe(FIRMWARE_VERSION);
  } finally {
    await fleet.stop();
  }
}, 60_000);
