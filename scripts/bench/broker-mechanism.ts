// Which Mosquitto mechanism carries device logins, measured at fleet size (docs/broker.md):
// the dynamic-security plugin against a password file + one ACL pattern reloaded with SIGHUP.
// For each, with N devices already known: the time to add ADD more, how long a block takes to cut
// a connected device off, and the broker's memory.
//
//   npx tsx scripts/bench/broker-mechanism.ts [N=100000] [ADD=10000] [DYNSEC_ADD=20]
//
// Mosquitto 2.0.11's plugin saves its whole JSON file after every command, so adding ADD devices
// one command pair each at N would take hours: DYNSEC_ADD are added and the rate extrapolated.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { mosquittoFilesStore, prepareMosquittoAuth } from '../../broker/mosquitto-files';
import type { MqttLogin } from '../../broker/credential-store';
import { dynsecInitialConfig, dynsecRoleOf } from '../../broker/dynsec';
import { dynsecAcls } from '../../domain/broker-identity';
import { findDynsecPlugin, startMosquitto } from '../../runtime/embedded/mosquitto';
import { freePort } from '../../runtime/embedded/free-port';
import { int, machineLine, mib, mosquittoBin, quiet, rssBytes, runBench, secs, sleep, table } from './support';

const N = Number(process.argv[2] ?? 100_000);
const ADD = Number(process.argv[3] ?? 10_000);
const DYNSEC_ADD = Number(process.argv[4] ?? 20);
const DYNSEC = findDynsecPlugin() ?? '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

const logins = (n: number, from = 0): MqttLogin[] =>
  Array.from({ length: n }, (_, i) => ({ username: `d${String(from + i).padStart(11, '0')}`, password: randomBytes(16).toString('base64url') }));

function connect(url: string, l: MqttLogin): Promise<MqttClient> {
  return mqtt.connectAsync(url, { username: l.username, password: l.password, reconnectPeriod: 0, protocolVersion: 4 });
}

/** ms from `act()` until the connected client's socket closes. */
async function cutOff(url: string, l: MqttLogin, act: () => Promise<unknown>): Promise<number> {
  const c = await connect(url, l);
  const closed = new Promise<number>((r) => c.once('close', () => r(performance.now())));
  const t0 = performance.now();
  await act();
  const t = await Promise.race([closed, sleep(10_000).then(() => Number.NaN)]);
  c.end(true);
  return t - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A device as the plugin's file holds it: a client and its own role (broker/dynsec.ts). */
function dynsecClient(l: MqttLogin) {
  const salt = randomBytes(12);
  const rolename = dynsecRoleOf(l.username);
  return {
    client: { username: l.username, roles: [{ rolename }], password: pbkdf2Sync(l.password, salt, 101, 64, 'sha512').toString('base64'), salt: salt.toString('base64'), iterations: 101 },
    role: { rolename, acls: dynsecAcls(l.username) },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

runBench(async (cleanup) => {
  console.log(`broker mechanism at ${int(N)} devices: add ${int(ADD)}, block one\n${await machineLine()}\n`);
  const known = logins(N);
  const added = logins(ADD, N);
  const rows: string[][] = [];
  const header = ['mechanism', `set-up with ${int(N)}`, `add ${int(ADD)}`, 'block → cut off', 'broker RSS', 'on disk'];

  // ---------------------------------------------------------------- password file + ACL + SIGHUP
  {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-passwd-'));
    cleanup.add('remove the password-file broker dir', () => fs.rmSync(dir, { recursive: true, force: true }));
    let t = performance.now();
    prepareMosquittoAuth(dir, known, { replace: true });
    const writeMs = performance.now() - t;
    t = performance.now();
    const broker = await startMosquitto({ bin: mosquittoBin(), port: await freePort(), dir, authDir: dir, persistent: false, log: quiet });
    const startMs = performance.now() - t;
    cleanup.add('stop the password-file broker', () => broker.stop());
    await connect(broker.url, known[N - 1]!).then((c) => c.end(true)); // it has loaded the file
    const rssBefore = rssBytes(broker.process.pid!)!;
    const store = mosquittoFilesStore({ dir, url: broker.url, reloadTimeoutMs: 60_000 });
    t = performance.now();
    await store.put(added);
    const addMs = performance.now() - t;
    await connect(broker.url, added[ADD - 1]!).then((c) => c.end(true));
    const blocks: number[] = [];
    for (let i = 0; i < 5; i++) blocks.push(await cutOff(broker.url, known[i]!, () => store.remove([known[i]!.username])));
    const rss = rssBytes(broker.process.pid!)!;
    rows.push(['password file + ACL pattern, SIGHUP', `${secs(writeMs)} write, ${secs(startMs)} start`, secs(addMs), `${Math.round(median(blocks))} ms (median of 5; max ${Math.round(Math.max(...blocks))} ms)`, `${mib(rssBefore)} → ${mib(rss)}`, `${mib(fs.statSync(path.join(dir, 'passwd')).size)} file`]);
    await store.close();
    console.log(table(header, rows));
  }

  // ---------------------------------------------------------------- dynamic-security plugin
  {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bench-dynsec-'));
    cleanup.add('remove the dynsec broker dir', () => fs.rmSync(dir, { recursive: true, force: true }));
    const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
    let t = performance.now();
    const entries = known.map(dynsecClient);
    const config = JSON.parse(dynsecInitialConfig(admin)) as { clients: unknown[]; roles: unknown[] };
    config.clients.push(...entries.map((e) => e.client));
    config.roles.push(...entries.map((e) => e.role));
    const file = path.join(dir, 'dynsec.json');
    fs.writeFileSync(file, JSON.stringify(config));
    const writeMs = performance.now() - t;
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'mosquitto.conf'), [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `plugin ${DYNSEC}`, `plugin_opt_config_file ${file}`, 'set_tcp_nodelay true', 'persistence false', `user ${os.userInfo().username}`, 'log_dest stderr', 'log_type error', ''].join('\n'));
    t = performance.now();
    const proc = spawn(mosquittoBin(), ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    cleanup.add('stop the dynsec broker', () => proc.kill('SIGTERM'));
    while (!(await answers(port))) await sleep(20);
    const url = `mqtt://127.0.0.1:${port}`;
    const c0 = await connect(url, known[N - 1]!);
    c0.end(true);
    const startMs = performance.now() - t;
    const rssBefore = rssBytes(proc.pid!)!;
    const ctl = await connect(url, admin);
    await ctl.subscribeAsync('$CONTROL/dynamic-security/v1/response', { qos: 1 });
    const waiting: ((r: unknown) => void)[] = [];
    ctl.on('message', () => waiting.shift()?.(null));
    const command = (commands: unknown[]) => new Promise((r) => (waiting.push(r), ctl.publish('$CONTROL/dynamic-security/v1', JSON.stringify({ commands }), { qos: 1 })));
    t = performance.now();
    for (const l of added.slice(0, DYNSEC_ADD)) {
      const e = dynsecClient(l);
      await command([{ command: 'createRole', rolename: e.role.rolename, acls: e.role.acls }, { command: 'createClient', username: l.username, password: l.password, roles: [{ rolename: e.role.rolename }] }]);
    }
    const perDevice = (performance.now() - t) / DYNSEC_ADD;
    await connect(url, added[DYNSEC_ADD - 1]!).then((c) => c.end(true));
    const blocks: number[] = [];
    for (let i = 0; i < 5; i++) blocks.push(await cutOff(url, known[i]!, () => command([{ command: 'disableClient', username: known[i]!.username }])));
    const rss = rssBytes(proc.pid!)!;
    ctl.end(true);
    rows.push([
      'dynamic-security plugin',
      `${secs(writeMs)} write, ${secs(startMs)} start`,
      `${secs((perDevice * ADD))} (extrapolated: ${perDevice.toFixed(0)} ms per device over ${DYNSEC_ADD})`,
      `${Math.round(median(blocks))} ms (median of 5; max ${Math.round(Math.max(...blocks))} ms)`,
      `${mib(rssBefore)} → ${mib(rss)}`,
      `${mib(fs.statSync(file).size)} file`,
    ]);
  }

  console.log(table(header, rows));
  return 0;
});
