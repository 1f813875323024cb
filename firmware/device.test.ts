// The device against the run's real broker (Mosquitto, jest global setup), watched by a plain
// MQTT client the way the platform's bridge sees it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { parseCommandResult, parseLog, parseReportedConfig, type CommandResultMessage } from '../domain/device-messages';
import { newDeviceId } from '../domain/ids';
import { RDM_EXTENSION_ID, topics } from '../domain/topics';
import { testEnv } from '../test/support/env';
import { registerDevices } from '../test/support/broker';
import { Device, type DeviceOptions } from './device';
import { getModel } from './models';
import { clearRetained, plainClient, TreeWatcher } from './testing/mqtt-watch';

/** Watchers log in as the tools client; devices with their own logins, on the plain address. */
const url = testEnv().mqttUrl;
const deviceUrl = testEnv().brokerUrl;
const created: string[] = [];
const running: Device[] = [];
const watchers: TreeWatcher[] = [];
let platform: MqttClient;

async function boot(opts: Partial<DeviceOptions> & { model?: DeviceOptions['model'] } = {}): Promise<{ d: Device; w: TreeWatcher; id: string }> {
  const id = opts.deviceId ?? newDeviceId();
  created.push(id);
  const w = await TreeWatcher.open(url, topics.deviceAll(id));
  watchers.push(w);
  await registerDevices([{ deviceId: id, secret: 'secret' }]);
  const d = new Device({ deviceId: id, secret: 'secret', mqttUrl: deviceUrl, model: 'ev-charger', publishIntervalMs: 60_000, ...opts });
  running.push(d);
  d.start();
  await d.waitConnected(10_000);
  // The device's ack for `ready` comes before the watcher's copy: wait for the copy.
  await w.until(() => ['ready', 'alert'].includes(w.get(topics.state(id)) ?? ''), 3_000, 'ready');
  return { d, w, id };
}

/** Sends a diagnostic command the way the platform does and waits for its answer. */
async function command(w: TreeWatcher, id: string, requestId: string, body: unknown): Promise<CommandResultMessage> {
  await platform.publishAsync(topics.command(id, requestId), typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
  const raw = await w.until(() => w.get(topics.commandResult(id, requestId)), 5_000, `answer to ${requestId}`);
  const answer = parseCommandResult(raw);
  if (!answer) throw new Error(`malformed answer: ${raw}`);
  return answer;
}

function logsOf(w: TreeWatcher, id: string) {
  return w.history.filter((h) => h.topic === topics.log(id)).map((h) => parseLog(h.payload)!);
}

beforeAll(async () => {
  platform = await plainClient(url);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await Promise.all(watchers.splice(0).map((w) => w.close()));
});

afterAll(async () => {
  await platform.endAsync();
  await clearRetained(url, created);
});

describe('Homie announcement', () => {
  it('Homie 4.0: the retained description, values, $extensions with $rdm, init → ready', async () => {
    const { d, w, id } = await boot({ model: 'ev-charger' });
    expect(w.states(id)).toEqual(['init', 'ready']);
    // A controller that subscribes later gets the whole tree from the retained messages.
    const late = await TreeWatcher.open(url, topics.deviceAll(id));
    watchers.push(late);
    const model = getModel('ev-charger');
    const t = (s: string) => `homie/${id.toLowerCase()}/${s}`;
    await late.until(() => late.get(t('charger/energy')) !== undefined, 3_000, 'retained values');
    expect(late.history.every((h) => h.retain)).toBe(true);
    expect(late.get(t('$homie'))).toBe('4.0.0');
    expect(late.get(t('$state'))).toBe('ready');
    expect(late.get(t('$name'))).toBe(`EV charger ${id}`);
    expect(late.get(t('$nodes'))).toBe('charger');
    expect(late.get(t('$extensions'))!.split(',')).toContain(RDM_EXTENSION_ID);
    expect(late.get(t('$fw/version'))).toBe(d.firmwareVersion);
    expect(late.get(t('charger/$name'))).toBe('Charger');
    expect(late.get(t('charger/$type'))).toBe('ev-charger');
    expect(late.get(t('charger/$properties'))).toBe('relay,max-current,temperature,status,power,energy');
    for (const p of model.nodes[0]!.properties) {
      expect(late.get(t(`charger/${p.id}/$name`))).toBe(p.name);
      expect(late.get(t(`charger/${p.id}/$datatype`))).toBe(p.datatype);
      expect(late.get(t(`charger/${p.id}/$settable`))).toBe(String(p.settable ?? false));
      expect(late.get(t(`charger/${p.id}/$retained`))).toBe('true');
      expect(late.get(t(`charger/${p.id}/$unit`))).toBe(p.unit ?? undefined);
      expect(late.get(t(`charger/${p.id}/$format`))).toBe(p.format ?? undefined);
      expect(late.get(t(`charger/${p.id}`))).toBe(String(d.value('charger', p.id)));
    }
    expect(parseReportedConfig(late.get(topics.configReported(id))!)).toEqual({ version: 0, settings: {} });
    // init comes first, then $homie; ready comes after the description, the values and the config.
    const seq = w.history.map((h) => h.topic);
    const readyAt = seq.lastIndexOf(t('$state'));
    expect(seq.indexOf(t('$state'))).toBeLessThan(seq.indexOf(t('$homie')));
    for (const x of [t('$homie'), t('charger/energy/$retained'), t('charger/energy'), topics.configReported(id)]) expect(seq.indexOf(x)).toBeLessThan(readyAt);
  });

  it('Homie 3.0.1: $fw, $localip, $mac, $implementation, periodic $stats/uptime, no $extensions', async () => {
    const { w, id } = await boot({ model: 'thermostat', homie: '3.0' });
    const t = (s: string) => `homie/${id.toLowerCase()}/${s}`;
    expect(w.get(t('$homie'))).toBe('3.0.1');
    expect(w.get(t('$state'))).toBe('ready');
    expect(w.get(t('$fw/name'))).toBe('rdm-reference-firmware');
    expect(w.get(t('$implementation'))).toBe('rdm-reference-firmware');
    expect(w.get(t('$localip'))).toBe('127.0.0.1');
    expect(w.get(t('$mac'))).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    expect(w.get(t('$stats/interval'))).toBe('60');
    expect(w.get(t('$stats/uptime'))).toBe('0');
    expect(w.get(t('$extensions'))).toBeUndefined();
    expect(w.get(t('thermostat/$properties'))).toBe('setpoint,mode,temperature,humidity');
    expect(w.get(t('thermostat/mode/$format'))).toBe('off,heat,cool,auto');
    expect(w.get(t('thermostat/setpoint'))).toBe('21');
    // A configured stats interval is announced and followed.
    await platform.publishAsync(topics.configDesired(id), JSON.stringify({ version: 1, settings: { statsIntervalS: 1 } }), { qos: 1, retain: true });
    await w.value(t('$stats/interval'), '1');
    const uptimes = () => w.history.filter((h) => h.topic === t('$stats/uptime')).length;
    const before = uptimes();
    await w.until(() => uptimes() >= before + 2, 3_500, 'two more $stats/uptime');
    expect(Number(w.get(t('$stats/uptime')))).toBeGreaterThanOrEqual(1);
  });
});

describe('commands and configuration', () => {
  it('/set: applied and echoed retained at once; invalid or unknown sets change nothing and are logged', async () => {
    const { d, w, id } = await boot();
    const relay = topics.property(id, 'charger', 'relay');
    const current = topics.property(id, 'charger', 'max-current');
    // Every set in a row is echoed. (That the echo is quick, TCP_NODELAY, is tested on the socket
    // in runtime/mqtt-client.test.ts; round-trip times belong to scripts/bench/control.ts.)
    for (let i = 0; i < 15; i++) {
      const want = i % 2 === 0 ? 'true' : 'false';
      const n = w.history.length;
      await platform.publishAsync(topics.set(id, 'charger', 'relay'), want, { qos: 1 });
      await w.until(() => w.history.slice(n).some((h) => h.topic === relay && h.payload === want), 3_000, `echo ${want}`);
    }
    expect(d.value('charger', 'relay')).toBe(true);
    // The echo is retained: a controller subscribing now gets it.
    const late = await TreeWatcher.open(url, relay);
    watchers.push(late);
    await late.until(() => late.history.find((h) => h.topic === relay && h.retain && h.payload === 'true'), 3_000, 'retained echo');

    const applied = d.waitFor('set-applied', 3_000);
    await platform.publishAsync(topics.set(id, 'charger', 'max-current'), ' 24', { qos: 1 });
    expect(await applied).toMatchObject({ node: 'charger', property: 'max-current', value: 24, payload: '24', source: 'mqtt' });
    await w.value(current, '24');

    const rejections: string[] = [];
    d.on('set-rejected', (r) => rejections.push(`${r.property}:${r.reason}`));
    await platform.publishAsync(topics.set(id, 'charger', 'max-current'), '99', { qos: 1 });
    await platform.publishAsync(topics.set(id, 'charger', 'max-current'), '7.5', { qos: 1 });
    await platform.publishAsync(topics.set(id, 'charger', 'relay'), 'yes', { qos: 1 });
    await platform.publishAsync(topics.set(id, 'charger', 'power'), '5', { qos: 1 });
    await platform.publishAsync(topics.set(id, 'charger', 'nothing'), '1', { qos: 1 });
    await w.until(() => logsOf(w, id).filter((l) => l.message === 'set rejected').length === 5, 3_000, 'five rejections logged');
    expect(rejections).toEqual(['max-current:must be at most 32', 'max-current:must be an integer', 'relay:must be true or false', 'power:not settable', 'nothing:no such property']);
    const logged = logsOf(w, id).filter((l) => l.message === 'set rejected');
    expect(logged[0]).toMatchObject({ level: 'warn', fields: { node: 'charger', property: 'max-current', input: '99', reason: 'must be at most 32' } });
    expect(d.value('charger', 'max-current')).toBe(24);
    expect(w.get(current)).toBe('24');
    expect(w.get(topics.property(id, 'charger', 'power'))).toBe('0');
  });

  it('desired config: applied, reported with its version, bad keys refused, kept across a restart', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-state-'));
    try {
      const { d, w, id } = await boot({ stateDir, publishIntervalMs: 60_000 });
      const set = d.waitFor('set-applied', 3_000);
      await platform.publishAsync(topics.set(id, 'charger', 'relay'), 'true', { qos: 1 });
      await set;
      const applied = d.waitFor('config-applied', 3_000);
      const desired = { version: 8, settings: { temperatureLimitC: 75, publishIntervalMs: 100, logLevel: 'debug', site: { floor: 2 }, bogus: 1 } };
      await platform.publishAsync(topics.configDesired(id), JSON.stringify({ version: 7, settings: { ...desired.settings, temperatureLimitC: 500 } }), { qos: 1, retain: true });
      const first = await applied;
      // 500 is out of range: never applied (no previous value), reported without it, logged as an error.
      expect(first.rejected).toEqual([{ key: 'temperatureLimitC', reason: 'must be between 30 and 120' }]);
      await w.until(() => parseReportedConfig(w.get(topics.configReported(id)) ?? '')?.version === 7, 3_000, 'reported v7');
      expect(parseReportedConfig(w.get(topics.configReported(id))!)).toEqual({ version: 7, settings: { publishIntervalMs: 100, logLevel: 'debug', site: { floor: 2 }, bogus: 1 } });
      await w.until(() => logsOf(w, id).some((l) => l.level === 'error' && l.message === 'setting rejected'), 3_000, 'error log');
      // The new interval (100 ms, from 60 s) is in effect: publishes keep coming, and never faster
      // than the interval allows (a busy machine only delays them; no lower bound on the pace).
      const energy = topics.property(id, 'charger', 'energy');
      const published = () => w.history.filter((h) => h.topic === energy).length;
      const n0 = published();
      const t0 = performance.now();
      await w.until(() => published() >= n0 + 5, 15_000, 'five publishes at the new interval');
      const n1 = published();
      expect(n1 - n0).toBeLessThanOrEqual((3 * (performance.now() - t0)) / 100 + 1);

      // The same version again (as on every reconnection) changes nothing; a new one applies.
      const second = d.waitFor('config-applied', 3_000);
      await platform.publishAsync(topics.configDesired(id), JSON.stringify({ version: 7, settings: {} }), { qos: 1, retain: true });
      await platform.publishAsync(topics.configDesired(id), JSON.stringify(desired), { qos: 1, retain: true });
      expect(await second).toMatchObject({ version: 8, settings: desired.settings, rejected: [] });
      await w.until(() => (parseReportedConfig(w.get(topics.configReported(id)) ?? '')?.settings.temperatureLimitC as number) === 75, 3_000, 'reported 75');

      // A restarted device boots with its values and settings, and does not apply the same version again.
      await d.stop();
      running.splice(running.indexOf(d), 1);
      const saved = JSON.parse(fs.readFileSync(path.join(stateDir, `${id}.json`), 'utf8')) as { configVersion: number; values: Record<string, unknown> };
      expect(saved.configVersion).toBe(8);
      expect(saved.values['charger/relay']).toBe(true);
      const d2 = new Device({ deviceId: id, secret: 'secret', mqttUrl: deviceUrl, model: 'ev-charger', stateDir, publishIntervalMs: 60_000 });
      running.push(d2);
      expect(d2.value('charger', 'relay')).toBe(true);
      expect(d2.snapshot().config).toEqual({ version: 8, settings: desired.settings });
      expect(d2.snapshot().effectiveSettings).toMatchObject({ publishIntervalMs: 100, temperatureLimitC: 75 });
      let reapplied = false;
      d2.on('config-applied', () => (reapplied = true));
      const before = w.history.length;
      d2.start();
      await d2.waitConnected();
      await w.until(() => w.history.slice(before).some((h) => h.topic === topics.configReported(id)), 3_000, 'reported again');
      expect(reapplied).toBe(false);
      expect(parseReportedConfig(w.get(topics.configReported(id))!)).toEqual({ version: 8, settings: desired.settings });
      expect(w.get(topics.property(id, 'charger', 'relay'))).toBe('true');
    } finally {
      await Promise.all(running.splice(0).map((x) => x.stop())); // stop() saves: before the dir goes
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('diagnostics: ping, self-test, read-logs, unknown and malformed commands', async () => {
    const { d, w, id } = await boot({ model: 'lock' });
    const ping = await command(w, id, 'req-ping-1', { command: 'ping' });
    expect(ping).toEqual({ ok: true, result: { pong: true, uptimeMs: expect.any(Number) } });
    expect((ping.result as { uptimeMs: number }).uptimeMs).toBeGreaterThanOrEqual(0);

    const passed = await command(w, id, 'st-1', { command: 'self-test' });
    const checks = (passed.result as { checks: { check: string; ok: boolean }[] }).checks;
    expect(passed.ok).toBe(true);
    expect(checks.map((c) => c.check)).toEqual(['lock/locked', 'lock/battery', 'lock/door', 'mqtt']);
    d.setSensorFault('lock', 'battery', 'no reading');
    const failed = await command(w, id, 'st-2', { command: 'self-test' });
    expect(failed.ok).toBe(false);
    expect(failed.error).toBe('self-test failed: lock/battery');
    expect((failed.result as { checks: unknown[] }).checks).toContainEqual({ check: 'lock/battery', ok: false, detail: 'no reading' });

    d.log('info', 'marker one');
    d.log('debug', 'marker two');
    const logs = await command(w, id, 'logs_1', { command: 'read-logs', args: { lines: 3 } });
    const lines = (logs.result as { lines: { message: string; level: string }[] }).lines;
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).map((l) => l.message)).toEqual(['marker one', 'marker two']);

    expect(await command(w, id, 'u1', { command: 'format-disk' })).toEqual({ ok: false, error: expect.stringContaining('unknown command "format-disk"') });
    expect((await command(w, id, 'm1', 'not json')).ok).toBe(false);
    expect((await command(w, id, 'm2', { command: 'read-logs', args: { lines: 'all' } })).error).toMatch(/args.lines/);
  });

  it('reboot: answers, goes disconnected, boots again init → ready with a fresh uptime', async () => {
    const { d, w, id } = await boot({ rebootDelayMs: 200 });
    await new Promise((r) => setTimeout(r, 300));
    const connectedAgain = d.waitFor('connected', 5_000);
    const rebootAsked = performance.now();
    expect(await command(w, id, 'reboot-1', { command: 'reboot' })).toEqual({ ok: true, result: { rebooting: true } });
    await connectedAgain;
    await w.value(topics.state(id), 'ready');
    expect(w.states(id)).toEqual(['init', 'ready', 'disconnected', 'init', 'ready']);
    const ping = await command(w, id, 'ping-after', { command: 'ping' });
    // Fresh: counted from the boot after the reboot, so shorter than the time since the reboot was
    // asked for (an uptime carried over would be longer: it began 300 ms before that).
    expect((ping.result as { uptimeMs: number }).uptimeMs).toBeLessThan(performance.now() - rebootAsked);
  });

  it('a retained command (it would run again on every connection) is not obeyed', async () => {
    const id = newDeviceId();
    await platform.publishAsync(topics.command(id, 'reboot-2'), JSON.stringify({ command: 'reboot' }), { qos: 1, retain: true });
    try {
      const { w } = await boot({ deviceId: id, rebootDelayMs: 100 });
      await w.until(() => logsOf(w, id).some((l) => l.message === 'retained command ignored'), 3_000, 'ignored');
      await new Promise((r) => setTimeout(r, 300));
      expect(w.states(id)).toEqual(['init', 'ready']);
      expect(w.get(topics.commandResult(id, 'reboot-2'))).toBeUndefined();
    } finally {
      await platform.publishAsync(topics.command(id, 'reboot-2'), '', { qos: 1, retain: true });
    }
  });

  it('alerts: raiseAlert/clearAlert, and the charger over its temperature limit', async () => {
    const { d, w, id } = await boot();
    d.raiseAlert('maintenance due');
    await w.value(topics.state(id), 'alert');
    d.clearAlert();
    await w.value(topics.state(id), 'ready');
    expect(d.setSensor('charger', 'temperature', 80)).toMatchObject({ ok: true, payload: '80' });
    await w.value(topics.property(id, 'charger', 'temperature'), '80');
    await w.value(topics.state(id), 'alert');
    expect(d.alertReason()).toMatch(/80 °C over the limit of 60/);
    expect(d.setSensor('charger', 'status', 'broken')).toMatchObject({ ok: false });
    d.setSensor('charger', 'temperature', 30);
    await w.value(topics.state(id), 'ready');
    expect(w.states(id).slice(-4)).toEqual(['alert', 'ready', 'alert', 'ready']);
  });

  it('kill(): the broker publishes the last will, $state = lost', async () => {
    const { d, w, id } = await boot({ model: 'thermostat' });
    d.kill();
    running.splice(running.indexOf(d), 1);
    await w.value(topics.state(id), 'lost', 5_000);
    expect(d.state).toBe('lost');
  });

  it('stop(): $state = disconnected and no last will', async () => {
    const { d, w, id } = await boot({ model: 'lock' });
    await d.stop();
    await w.value(topics.state(id), 'disconnected');
    await new Promise((r) => setTimeout(r, 300));
    expect(w.states(id)).toEqual(['init', 'ready', 'disconnected']);
  });
});
