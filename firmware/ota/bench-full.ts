// Bench: N fleet devices in 'full' OTA mode fetch one image at the same moment, into memory, verify
// it (SHA-256 and Ed25519) and reboot for real, against a Mosquitto and an HTTP server of its own.
//
//   npx tsx firmware/ota/bench-full.ts [--devices 100] [--size-mib 4]
//
// Prints one JSON line: how long until every device reported `updated`, and the process's peak RSS
// (every device holds its image while it verifies: devices × size at most).
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { parseArgs } from 'node:util';
import { buildTestImage, parseOtaReport } from '../../domain/ota';
import { parseTopic, topics } from '../../domain/topics';
import { intArg } from '../cli-args';
import { Fleet, generateCredentials } from '../fleet';
import { ImageServer } from '../testing/image-server';
import { plainClient } from '../testing/mqtt-watch';
import { OwnBroker } from '../testing/own-broker';

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { devices: { type: 'string' }, 'size-mib': { type: 'string' } } });
  const n = intArg('devices', a.devices, { min: 1 }) ?? 100;
  const size = (intArg('size-mib', a['size-mib'], { min: 1, max: 64 }) ?? 4) * 1024 * 1024;
  const broker = await OwnBroker.create();
  await broker.start();
  const server = await ImageServer.start();
  const keys = generateKeyPairSync('ed25519');
  const image = buildTestImage({ version: '2.0.0', size });
  const url = server.serve('/fw', { bytes: image });
  const sha256 = createHash('sha256').update(image).digest('hex');
  const signature = sign(null, image, keys.privateKey).toString('base64');
  const creds = generateCredentials(n);
  const fleet = new Fleet({ devices: creds, mqttUrl: broker.url, publishIntervalMs: 600_000, ota: 'full', otaPublicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }) as string, rebootDelayMs: 100 });
  const done = new Map<string, string>();
  const watchers = [];
  for (let i = 0; i < n; i += 25) {
    const c = await plainClient(broker.url);
    watchers.push(c);
    c.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      const r = t?.kind === 'ota-report' ? parseOtaReport(payload) : null;
      if (t && r && (r.state === 'updated' || r.state === 'failed')) done.set(t.deviceId, r.error ?? r.state);
    });
    await c.subscribeAsync(creds.slice(i, i + 25).map((x) => topics.otaReport(x.deviceId)), { qos: 1 });
  }
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  try {
    fleet.start();
    await fleet.waitConnected(n, 60_000);
    const rssBefore = process.memoryUsage().rss;
    const platform = watchers[0]!;
    const t0 = performance.now();
    await Promise.all(creds.map((c) => platform.publishAsync(topics.otaSet(c.deviceId), JSON.stringify({ updateId: `B-${c.deviceId}`, version: '2.0.0', url, size, sha256, signature }), { qos: 1 })));
    while (done.size < n) {
      if (performance.now() - t0 > 300_000) throw new Error(`only ${done.size} of ${n} finished`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    const outcomes: Record<string, number> = {};
    for (const v of done.values()) outcomes[v] = (outcomes[v] ?? 0) + 1;
    console.log(JSON.stringify({ devices: n, imageMiB: size / 1024 / 1024, allFinishedMs: Math.round(ms), outcomes, requests: server.requests.length, rssBeforeMiB: Math.round(rssBefore / 2 ** 20), peakRssMiB: Math.round(peakRss / 2 ** 20), versions: fleet.firmwareVersions() }));
  } finally {
    clearInterval(sampler);
    await fleet.stop();
    await Promise.all(watchers.map((c) => c.endAsync()));
    await server.close();
    await broker.dispose();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
