// Device authentication at the embedded Mosquitto (password file + ACL pattern, docs/broker.md):
//   1. connects per second with logins against an anonymous Mosquitto, in the same run (target: ratio >= 0.5);
//   2. DEVICES devices connected at once with their logins;
//   3. the credential sync of a DEVICES-device batch (the activity the batch workflow runs, chunk by chunk).
//
//   npx tsx scripts/bench/auth.ts [DEVICES=10000] [--check]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { MockActivityEnvironment } from '@temporalio/testing';
import { brokerCredentialActivities } from '../../activities/broker-credentials';
import { mosquittoFilesStore, prepareMosquittoAuth } from '../../broker/mosquitto-files';
import { platformLogins } from '../../broker/stores';
import { deviceMqttUsername } from '../../domain/broker-identity';
import { CredentialDeriver } from '../../domain/credentials';
import { startMosquitto, type RunningMosquitto } from '../../runtime/embedded/mosquitto';
import { freePort } from '../../runtime/embedded/free-port';
import { generateCredentials } from '../../firmware/fleet';
import { CREATE_CHUNK } from '../../workflows/batch-provisioning';
import { insertDevices, int, machineLine, mosquittoBin, ownMosquitto, quiet, runBench, scratchDatabase, secs, Targets } from './support';

const DEVICES = Number(process.argv.find((a, i) => i >= 2 && /^\d+$/.test(a)) ?? 10_000);
const CHECK = process.argv.includes('--check');
const CONNECT_SAMPLE = 3_000;
const IN_FLIGHT = 100;

/** Connects `logins` with IN_FLIGHT connects in flight; returns connects per second and the clients. */
async function connectAll(url: string, logins: readonly { username?: string; password?: string }[]): Promise<{ perS: number; clients: MqttClient[] }> {
  const clients: MqttClient[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < logins.length) {
        const l = logins[next++]!;
        const c = await mqtt.connectAsync(url, { ...l, reconnectPeriod: 0, protocolVersion: 4, keepalive: 600, connectTimeout: 30_000 });
        (c.stream as import('node:net').Socket).setNoDelay?.(true);
        clients.push(c);
      }
    }),
  );
  return { perS: logins.length / ((performance.now() - t0) / 1000), clients };
}

const closeAll = (clients: MqttClient[]) => Promise.all(clients.map((c) => c.endAsync(true)));

runBench(async (cleanup) => {
  console.log(`auth bench: ${int(DEVICES)} devices\n${await machineLine()}\n`);
  const targets = new Targets();
  const credentials = new CredentialDeriver(Buffer.from('bench-key-0123456789abcdef0123456789abcdef'));
  const devices = generateCredentials(DEVICES).map((c) => ({ ...c, secret: credentials.deviceSecret(c.deviceId, 1) }));
  const logins = devices.map((d) => ({ username: deviceMqttUsername(d.deviceId), password: d.secret }));

  // The product's broker, with every device's login; and a bare anonymous one beside it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-auth-'));
  cleanup.add('remove the auth broker dir', () => fs.rmSync(dir, { recursive: true, force: true }));
  prepareMosquittoAuth(dir, [...platformLogins(credentials), ...logins], { replace: true });
  const authBroker: RunningMosquitto = await startMosquitto({ bin: mosquittoBin(), port: await freePort(), dir, authDir: dir, persistent: false, log: quiet, extraConfig: ['max_connections -1'] });
  cleanup.add('stop the auth broker', () => authBroker.stop());
  const bare = await ownMosquitto(cleanup);

  // 1. connects per second, alternating so that neither gets the machine's quieter moment.
  const sample = logins.slice(0, CONNECT_SAMPLE);
  const rates = { auth: [] as number[], bare: [] as number[] };
  for (let round = 0; round < 2; round++) {
    const b = await connectAll(bare.url, sample.map(() => ({})));
    rates.bare.push(b.perS);
    await closeAll(b.clients);
    const a = await connectAll(authBroker.url, sample);
    rates.auth.push(a.perS);
    await closeAll(a.clients);
  }
  const best = (xs: number[]) => Math.max(...xs);
  const ratio = best(rates.auth) / best(rates.bare);
  console.log(`connects/s (${int(CONNECT_SAMPLE)} clients, ${IN_FLIGHT} in flight, best of 2): with logins ${int(best(rates.auth))}, anonymous ${int(best(rates.bare))}, ratio ${ratio.toFixed(2)}`);
  targets.add('authenticated connects/s vs anonymous, same run', ratio >= 0.5, `${ratio.toFixed(2)} (target >= 0.5)`);

  // 2. every device connected at once.
  const all = await connectAll(authBroker.url, logins);
  const connected = all.clients.filter((c) => c.connected).length;
  console.log(`${int(connected)} of ${int(DEVICES)} devices connected with their logins (${int(all.perS)} connects/s)`);
  targets.add(`${int(DEVICES)} devices connected with auth`, connected === DEVICES, `${int(connected)}`);
  await closeAll(all.clients);

  // 3. the batch's credential sync, as the batch workflow runs it (chunks of CREATE_CHUNK), into a broker that knows nobody yet.
  const scratch = await scratchDatabase(cleanup, 'auth');
  const batchId = await insertDevices(scratch.db, devices);
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-sync-'));
  cleanup.add('remove the sync broker dir', () => fs.rmSync(dir2, { recursive: true, force: true }));
  prepareMosquittoAuth(dir2, platformLogins(credentials), { replace: true });
  const syncBroker = await startMosquitto({ bin: mosquittoBin(), port: await freePort(), dir: dir2, authDir: dir2, persistent: false, log: quiet });
  cleanup.add('stop the sync broker', () => syncBroker.stop());
  const acts = brokerCredentialActivities({ db: scratch.db, credentials, broker: mosquittoFilesStore({ dir: dir2, url: syncBroker.url }) });
  const env = new MockActivityEnvironment();
  const t0 = performance.now();
  for (let from = 0; from < DEVICES; from += CREATE_CHUNK) await env.run(acts.syncBatchCredentials, { batchId, fromSeq: from, toSeq: Math.min(DEVICES, from + CREATE_CHUNK) });
  const syncMs = performance.now() - t0;
  const last = await mqtt.connectAsync(syncBroker.url, { ...logins[DEVICES - 1]!, reconnectPeriod: 0 });
  await last.endAsync(true);
  console.log(`credential sync of a ${int(DEVICES)}-device batch: ${secs(syncMs)} (${Math.ceil(DEVICES / CREATE_CHUNK)} chunks; the last device then logs in)`);

  targets.print();
  return targets.exitCode(CHECK);
});
