// The two command lines as an operator runs them: a device from devices.csv until SIGTERM, and a
// small fleet for a fixed duration.
import { registerDevices } from '../test/support/broker';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { csvLine } from '../files/csv';
import { DEVICE_CSV_COLUMNS, deviceCsvValues } from '../files/device-export';
import { syntheticRow } from '../files/synthetic-rows';
import { topics } from '../domain/topics';
import { testEnv } from '../test/support/env';
import { clearRetained, TreeWatcher } from './testing/mqtt-watch';
import { OwnBroker } from './testing/own-broker';

const url = testEnv().mqttUrl;
const root = path.resolve(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function run(args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): { proc: ChildProcess; lines: () => Record<string, unknown>[]; exit: Promise<number | null> } {
  const proc = spawn(tsx, args, { cwd: root, env: { ...process.env, MQTT_URL: '' }, stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, lines, exit };
}

async function until<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('main.ts: runs the device of a devices.csv row (broker from mqtt_url), serves the admin page, stops cleanly on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-cli-'));
  const rows = [syntheticRow(Date.now() % 100_000), syntheticRow((Date.now() % 100_000) + 1)];
  const file = path.join(dir, 'devices.csv');
  await registerDevices(rows);
  fs.writeFileSync(file, csvLine(DEVICE_CSV_COLUMNS) + rows.map((r) => csvLine(deviceCsvValues({ ...r, mqttUrl: testEnv().brokerUrl }))).join(''));
  const id = rows[1]!.deviceId;
  const w = await TreeWatcher.open(url, topics.deviceAll(id));
  const { proc, lines, exit } = run(['firmware/main.ts', '--file', file, '--row', '2', '--model', 'lock', '--homie', '3.0', '--admin-port', '0', '--state-dir', dir, '--interval', '1000']);
  try {
    await w.value(topics.state(id), 'ready', 15_000);
    expect(w.get(`homie/${id.toLowerCase()}/$homie`)).toBe('3.0.1');
    expect(w.get(`homie/${id.toLowerCase()}/lock/$properties`)).toBe('locked,battery,door');
    const adminUrl = await until(() => lines().find((l) => l.msg === 'local admin page')?.url as string | undefined, 5_000, 'admin url');
    const state = (await (await fetch(`${adminUrl}/api/state`)).json()) as { deviceId: string; connection: { status: string } };
    expect(state).toMatchObject({ deviceId: id, connection: { status: 'online' } });
    proc.kill('SIGTERM');
    expect(await exit).toBe(0);
    await w.value(topics.state(id), 'disconnected');
    expect(fs.existsSync(path.join(dir, `${id}.json`))).toBe(true);
    expect(lines().some((l) => l.msg === 'stopped')).toBe(true);
  } finally {
    proc.kill('SIGKILL');
    await w.close();
    await clearRetained(url, [id]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

it('main.ts: a SIGKILL of the launcher (tsx) powers the device off: last will, no orphan process', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-cli-'));
  const row = syntheticRow((Date.now() % 100_000) + 2);
  const file = path.join(dir, 'device.json');
  await registerDevices([row]);
  fs.writeFileSync(file, JSON.stringify({ deviceId: row.deviceId, secret: row.secret, mqttUrl: testEnv().brokerUrl, model: 'thermostat' }));
  const id = row.deviceId;
  const w = await TreeWatcher.open(url, topics.deviceAll(id));
  const { proc } = run(['firmware/main.ts', '--file', file]);
  try {
    await w.value(topics.state(id), 'ready', 15_000);
    expect(w.get(`homie/${id.toLowerCase()}/thermostat/$type`)).toBe('thermostat');
    proc.kill('SIGKILL');
    await w.value(topics.state(id), 'lost', 5_000);
    // The device process (tsx's child) is gone too.
    await until(() => (execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(file) ? undefined : true), 3_000, 'the device process to exit');
  } finally {
    proc.kill('SIGKILL');
    await w.close();
    await clearRetained(url, [id]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

it('main.ts: a pairing request waits for the button, which is the `press` command on stdin; the owner is shown', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-cli-'));
  const row = syntheticRow((Date.now() % 100_000) + 3);
  await registerDevices([row]);
  const file = path.join(dir, 'device.json');
  fs.writeFileSync(file, JSON.stringify({ deviceId: row.deviceId, secret: row.secret, mqttUrl: url, model: 'thermostat' }));
  const id = row.deviceId;
  const w = await TreeWatcher.open(url, topics.deviceAll(id));
  const { proc, lines } = run(['firmware/main.ts', '--file', file], 'pipe');
  try {
    await w.value(topics.state(id), 'ready', 15_000);
    proc.stdin!.write('press\n'); // nothing to press yet
    await until(() => lines().find((l) => l.msg === 'no pairing request is waiting'), 5_000, 'nothing to press');
    w.client.publish(topics.pairingRequest(id), JSON.stringify({ pairingId: 'P-CLI', expiresAt: new Date(Date.now() + 60_000).toISOString() }), { qos: 1 });
    await until(() => lines().find((l) => l.msg === 'pairing request: type "press" to accept, "refuse" to refuse'), 5_000, 'the request');
    expect(w.get(topics.pairingResponse(id))).toBeUndefined(); // waits for the button
    proc.stdin!.write('press\n');
    await w.value(topics.pairingResponse(id), JSON.stringify({ pairingId: 'P-CLI', accept: true }), 5_000);
    w.client.publish(topics.owner(id), JSON.stringify({ ownerId: 'U-CLI' }), { qos: 1, retain: true });
    await until(() => lines().find((l) => l.msg === 'owner' && l.ownerId === 'U-CLI'), 5_000, 'the owner');
  } finally {
    proc.kill('SIGKILL');
    await w.close();
    await clearRetained(url, [id]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

it('main.ts: a usage error exits with 2', async () => {
  const { lines, exit, proc } = run(['firmware/main.ts', '--file', '/nonexistent.csv', '--device', 'ABCDEFGHJKMN']);
  expect(await exit).toBe(2);
  expect(lines()).toEqual([]);
  proc.kill();
}, 20_000);

it('fleet-main.ts: a generated fleet for a fixed duration, with a summary', async () => {
  // A broker of its own: the generated devices' retained values vanish with it.
  const broker = await OwnBroker.create();
  await broker.start();
  const { lines, exit } = run(['firmware/fleet-main.ts', '--count', '20', '--rate', '400', '--duration', '2', '--report-every', '1', '--broker', broker.url, '--qos', '1', '--bench']);
  try {
    expect(await exit).toBe(0);
  } finally {
    await broker.dispose();
  }
  const summary = lines().find((l) => l.msg === 'fleet stopped');
  expect(summary).toMatchObject({ devices: 20, connects: 20, valuesFailed: 0 });
  // It published, paced: at most 3× the 400/s for the 2 s, plus every value announced on connect
  // (6 a device at most). How close it comes to 400/s is for scripts/bench/ingest.ts.
  expect(summary!.valuesSent as number).toBeGreaterThan(0);
  expect(summary!.valuesSent as number).toBeLessThan(3 * 400 * 2 + 20 * 6);
  expect(summary!.valuesPublished).toBe(summary!.valuesSent);
}, 30_000);
