// Stages 3 to 6 end to end: reference-firmware devices (provisioned through the API, credentials
// from the batch's devices.csv) talk to a real Mosquitto; the bridge stores what they say in the
// real Postgres; the API controls, configures and diagnoses them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bridge } from '../bridge/bridge';
import { startTestBridge } from './support/bridge';
import { Device, type DeviceOptions } from '../firmware/device';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { newEntityId } from '../domain/ids';
import { testEnv } from './support/env';
import { eventually, startStack, type Stack } from './support/stack';

const ROOT = path.resolve(__dirname, '..');
const REPLY_TIMEOUT_MS = 1_500;

let s: Stack;
let bridge: Bridge;
let creds: Provisioning[];
let next = 0;
const devices: Device[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-talk-'));
let csvFile: string;

async function json<T = any>(res: Response, status: number): Promise<T> {
  const body = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${body}`);
  return (body ? JSON.parse(body) : undefined) as T;
}

/** A reference-firmware device with the next provisioned credentials. */
function device(opts: Partial<DeviceOptions> = {}): Device {
  const c = creds[next++]!;
  const d = new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: testEnv().mqttUrl, model: 'ev-charger', publishIntervalMs: 60_000, backoff: { initialMs: 100, maxMs: 500 }, ...opts });
  devices.push(d);
  return d;
}

async function online(id: string, want = true) {
  await eventually(async () => (await json(await s.api(`/api/v1/devices/${id}`), 200)).online === want, 10_000, 50);
}

async function sensors(id: string) {
  return json<{ online: boolean; items: any[] }>(await s.api(`/api/v1/devices/${id}/sensors`), 200);
}

beforeAll(async () => {
  s = await startStack({ replyTimeoutMs: REPLY_TIMEOUT_MS });
  // It counts stored rows exactly: no other test bridge may run meanwhile (each stores every message).
  bridge = await startTestBridge(s, 'talk', { exclusive: true });
  const batch = await json(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'talkers', count: 12, model: 'ev-charger' } }), 201);
  await eventually(async () => (await json(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready');
  const csv = await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text();
  csvFile = path.join(tmp, 'devices.csv');
  fs.writeFileSync(csvFile, csv);
  creds = provisioningRows(csv, { broker: testEnv().mqttUrl });
  expect(creds).toHaveLength(12);
}, 180_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  await bridge?.stop();
  await s?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('discovery', () => {
  it.each(['4.0', '3.0'] as const)('a Homie %s device describes its sensors and their values', async (homie) => {
    const d = device({ homie, model: homie === '4.0' ? 'ev-charger' : 'thermostat' });
    d.start();
    await online(d.deviceId);
    const got = await eventually(async () => {
      const r = await sensors(d.deviceId);
      return r.items.length === d.snapshot().values.length && r.items.every((i) => i.value !== null) ? r : null;
    }, 10_000, 50);
    expect(got.online).toBe(true);
    for (const v of d.snapshot().values) {
      const item = got.items.find((i) => i.node === v.node && i.property === v.property);
      expect(item).toMatchObject({ datatype: v.datatype, settable: v.settable, unit: v.unit, format: v.format, name: v.name, value: v.value });
    }
    const dev = await json(await s.api(`/api/v1/devices/${d.deviceId}`), 200);
    expect(dev.online).toBe(true);
  });
});

describe('control', () => {
  let d: Device;
  beforeAll(async () => {
    d = device();
    d.start();
    await online(d.deviceId);
    await eventually(async () => (await sensors(d.deviceId)).items.some((i) => i.property === 'relay'), 10_000, 50);
  });

  it('sets a settable sensor and answers once the device confirmed it', async () => {
    const r = await json(await s.api(`/api/v1/devices/${d.deviceId}/sensors/charger/relay`, { method: 'PUT', json: { value: true } }), 200);
    expect(r).toMatchObject({ node: 'charger', property: 'relay', value: true, payload: 'true' });
    expect(d.value('charger', 'relay')).toBe(true);
    const limit = await json(await s.api(`/api/v1/devices/${d.deviceId}/sensors/charger/max-current`, { method: 'PUT', json: { value: 32 } }), 200);
    expect(limit.value).toBe(32);
    expect(d.value('charger', 'max-current')).toBe(32);
    await eventually(async () => (await sensors(d.deviceId)).items.find((i) => i.property === 'relay')?.value === true, 5_000, 50);
  });

  it('refuses what the property cannot take, and changes nothing', async () => {
    const before = d.value('charger', 'max-current');
    const cases: [string, unknown, number, string][] = [
      ['charger/max-current', 40, 422, 'invalid_value'],
      ['charger/max-current', 'lots', 422, 'invalid_value'],
      ['charger/relay', 'maybe', 422, 'invalid_value'],
      ['charger/power', 5, 422, 'not_settable'],
      ['charger/nothing', 1, 404, 'not_found'],
    ];
    for (const [p, value, status, code] of cases) {
      const body = await json(await s.api(`/api/v1/devices/${d.deviceId}/sensors/${p}`, { method: 'PUT', json: { value } }), status);
      expect(body.error.code).toBe(code);
    }
    const bad = await json(await s.api(`/api/v1/devices/${d.deviceId}/sensors/Charger/relay`, { method: 'PUT', json: { value: true } }), 400);
    expect(bad.error.code).toBe('validation_failed');
    expect(d.value('charger', 'max-current')).toBe(before);
  });

  it('answers 409 for an offline device and 504 when the device does not confirm', async () => {
    const deaf = device({ subscribe: false }); // online, describes itself, but never hears a command
    deaf.start();
    await online(deaf.deviceId);
    await eventually(async () => (await sensors(deaf.deviceId)).items.some((i) => i.property === 'relay'), 10_000, 50);
    const t0 = Date.now();
    const timeout = await json(await s.api(`/api/v1/devices/${deaf.deviceId}/sensors/charger/relay`, { method: 'PUT', json: { value: true } }), 504);
    expect(timeout.error.code).toBe('device_timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(REPLY_TIMEOUT_MS - 50);

    await deaf.stop();
    await online(deaf.deviceId, false);
    const offline = await json(await s.api(`/api/v1/devices/${deaf.deviceId}/sensors/charger/relay`, { method: 'PUT', json: { value: true } }), 409);
    expect(offline.error.code).toBe('device_offline');
  });

  it('runs diagnostic commands and records their answers', async () => {
    const ping = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands`, { method: 'POST', json: { command: 'ping' } }), 200);
    expect(ping).toMatchObject({ command: 'ping', status: 'succeeded', result: { pong: true } });
    const test = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands`, { method: 'POST', json: { command: 'self-test' } }), 200);
    expect(test.status).toBe('succeeded');
    const unknown = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands`, { method: 'POST', json: { command: 'format-disk' } }), 200);
    expect(unknown.status).toBe('failed');
    expect(unknown.error).toMatch(/format-disk/);
    const listed = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands?limit=10`), 200);
    expect(listed.items.map((c: any) => c.command)).toEqual(['format-disk', 'self-test', 'ping']);
    const one = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands/${ping.id}`), 200);
    expect(one.status).toBe('succeeded');
    const bad = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands`, { method: 'POST', json: { command: 'ping', extra: 1 } }), 400);
    expect(bad.error.code).toBe('validation_failed');
  });

  it('reboots a device on command; it comes back by itself', async () => {
    const connects = d.counters().connects;
    const r = await json(await s.api(`/api/v1/devices/${d.deviceId}/commands`, { method: 'POST', json: { command: 'reboot' } }), 200);
    expect(r.status).toBe('succeeded');
    await eventually(async () => d.counters().connects > connects && d.snapshot().connection.status === 'online', 10_000, 50);
    await online(d.deviceId);
  });

  it('stores the logs a device publishes', async () => {
    d.log('warn', 'fan speed low', { rpm: 300 });
    const logs = await eventually(async () => {
      const page = await json(await s.api(`/api/v1/devices/${d.deviceId}/logs?level=warn`), 200);
      return page.items.find((l: any) => l.message === 'fan speed low') ? page : null;
    }, 5_000, 50);
    expect(logs.items.every((l: any) => l.level === 'warn' || l.level === 'error')).toBe(true);
    expect(logs.items.find((l: any) => l.message === 'fan speed low').fields).toEqual({ rpm: 300 });
  });
});

describe('who may', () => {
  it('keeps telemetry, control and configuration from manufacturers and strangers', async () => {
    const id = creds[0]!.deviceId;
    const maker = await s.token('manufacturer');
    const calls: [string, string, unknown?][] = [
      ['GET', `/api/v1/devices/${id}/sensors`],
      ['PUT', `/api/v1/devices/${id}/sensors/charger/relay`, { value: true }],
      ['GET', `/api/v1/devices/${id}/config`],
      ['PATCH', `/api/v1/devices/${id}/config`, { a: 1 }],
      ['POST', `/api/v1/devices/${id}/commands`, { command: 'ping' }],
      ['GET', `/api/v1/devices/${id}/telemetry`],
      ['GET', `/api/v1/devices/${id}/logs`],
      ['POST', '/api/v1/alert-rules', { name: 'x', node: 'charger', property: 'power', operator: '>', threshold: 1 }],
    ];
    for (const [method, url, body] of calls) {
      expect((await json(await s.api(url, { method, json: body, token: maker }), 403)).error.code).toBe('forbidden');
      expect((await json(await s.api(url, { method, json: body, token: null }), 401)).error.code).toBe('unauthorized');
    }
    // The alerts list answers anyone who may own a device, with their own devices' alerts only:
    // none of the company's for its manufacturer, while its admin sees them.
    const alertId = newEntityId();
    await s.db('alerts').insert({ id: alertId, device_id: id, source: 'device', severity: 'warning', message: 'who may', state: 'resolved', raised_at: new Date(), resolved_at: new Date() });
    expect(JSON.stringify(await json(await s.api('/api/v1/alerts?limit=1000', { token: maker }), 200))).not.toContain(alertId);
    expect(JSON.stringify(await json(await s.api(`/api/v1/alerts?limit=1000&deviceId=${id}`), 200))).toContain(alertId);
    await s.db('alerts').where({ id: alertId }).delete();
    const cfg = await s.db('device_config').where({ device_id: id }).first();
    expect(cfg?.desired_version ?? 0).toBe(0); // the refused PATCH changed nothing
    expect(cfg?.desired ?? {}).toEqual({});
  });
});

describe('configuration', () => {
  it('waits for an offline device and is applied when it comes back', async () => {
    const d = device({ stateDir: tmp });
    d.start();
    await online(d.deviceId);
    await d.stop();
    await online(d.deviceId, false);

    const patched = await json(await s.api(`/api/v1/devices/${d.deviceId}/config`, { method: 'PATCH', json: { temperatureLimitC: 75 } }), 200);
    expect(patched.desired).toEqual({ temperatureLimitC: 75 });
    expect(patched.pending).toEqual({ temperatureLimitC: 75 });
    expect(patched.inSync).toBe(false);

    d.start();
    const cfg = await eventually(async () => {
      const c = await json(await s.api(`/api/v1/devices/${d.deviceId}/config`), 200);
      return c.inSync ? c : null;
    }, 10_000, 50);
    expect(cfg.reported.temperatureLimitC).toBe(75);
    expect(cfg.reportedVersion).toBe(cfg.desiredVersion);
    expect(d.snapshot().effectiveSettings.temperatureLimitC).toBe(75);

    const bad = await json(await s.api(`/api/v1/devices/${d.deviceId}/config`, { method: 'PATCH', json: {} }), 400);
    expect(bad.error.code).toBe('validation_failed');
    const missing = await json(await s.api(`/api/v1/devices/0000000000ZZ/config`, { method: 'PATCH', json: { a: 1 } }), 404);
    expect(missing.error.code).toBe('not_found');
  });
});

describe('monitoring', () => {
  it('goes offline through the last will when the device process is killed', async () => {
    const c = creds[next++]!;
    // One process (tsx as a loader, not a launcher), so SIGKILL hits the device itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'firmware/main.ts', '--file', csvFile, '--device', c.deviceId, '--model', 'lock', '--interval', '60000'], {
      cwd: ROOT,
      env: { ...process.env, MQTT_URL: testEnv().mqttUrl, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      await eventually(async () => (await json(await s.api(`/api/v1/devices/${c.deviceId}`), 200)).online, 20_000, 100);
      child.kill('SIGKILL');
      // The broker notices the dead TCP connection at once and publishes the will ($state = lost).
      await online(c.deviceId, false);
      const presence = await s.db('devices').where({ id: c.deviceId }).first('homie_state', 'last_seen_at');
      expect(presence.homie_state).toBe('lost');
      expect(presence.last_seen_at).not.toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('raises alerts from the device and from threshold rules, and resolves them', async () => {
    const d = device();
    d.start();
    await online(d.deviceId);
    const rule = await json(
      await s.api('/api/v1/alert-rules', { method: 'POST', json: { name: 'too hot', deviceId: d.deviceId, node: 'charger', property: 'temperature', operator: '>', threshold: 50, severity: 'critical' } }),
      201,
    );
    d.setSensor('charger', 'temperature', 55);
    const ruleAlert = await eventually(async () => {
      const page = await json(await s.api(`/api/v1/devices/${d.deviceId}/alerts?state=open`), 200);
      return page.items.find((a: any) => a.ruleId === rule.id);
    }, 5_000, 50);
    expect(ruleAlert).toMatchObject({ source: 'rule', severity: 'critical', node: 'charger', property: 'temperature', value: '55' });
    d.setSensor('charger', 'temperature', 30);
    await eventually(async () => (await json(await s.api(`/api/v1/alerts?deviceId=${d.deviceId}&state=resolved`), 200)).items.some((a: any) => a.id === ruleAlert.id), 5_000, 50);

    d.raiseAlert('door open');
    const deviceAlert = await eventually(async () => (await json(await s.api(`/api/v1/devices/${d.deviceId}/alerts?state=open`), 200)).items.find((a: any) => a.source === 'device'), 5_000, 50);
    expect((await json(await s.api(`/api/v1/devices/${d.deviceId}`), 200)).online).toBe(true); // alert: connected, unwell
    d.clearAlert();
    await eventually(async () => (await json(await s.api(`/api/v1/devices/${d.deviceId}/alerts?state=resolved`), 200)).items.some((a: any) => a.id === deviceAlert.id), 5_000, 50);

    const bad = await json(await s.api('/api/v1/alert-rules', { method: 'POST', json: { name: 'x', node: 'charger', property: 'temperature', operator: '=>', threshold: 1 } }), 400);
    expect(bad.error.code).toBe('validation_failed');
    await json(await s.api(`/api/v1/alert-rules/${rule.id}`, { method: 'DELETE' }), 204);
    await json(await s.api(`/api/v1/alert-rules/${rule.id}`), 404);
  });
});

describe('telemetry history', () => {
  it('stores every value published exactly once, and aggregates it per time bucket', async () => {
    const d = device({ publishIntervalMs: 20 });
    const started = new Date(Date.now() - 1_000).toISOString();
    d.start();
    await online(d.deviceId);
    // Enough values to fill several buckets; a busy machine takes longer, it does not fail.
    await eventually(async () => Object.values(d.counters().published).reduce((a, b) => a + b, 0) > 200, 60_000, 50);
    await d.stop();
    await bridge.flush();
    const published = d.counters().published;
    const total = Object.values(published).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(200);
    const rows: { node: string; property: string; n: string }[] = await s.db('telemetry').where({ device_id: d.deviceId }).groupBy('node', 'property').select('node', 'property', s.db.raw('count(*) AS n'));
    const stored = Object.fromEntries(rows.map((r) => [`${r.node}/${r.property}`, Number(r.n)]));
    expect(stored).toEqual(published);

    const raw = await json(await s.api(`/api/v1/devices/${d.deviceId}/telemetry?node=charger&property=temperature&limit=5`), 200);
    expect(raw.items).toHaveLength(5);
    expect(raw.nextCursor).not.toBeNull();
    const page2 = await json(await s.api(`/api/v1/devices/${d.deviceId}/telemetry?node=charger&property=temperature&limit=5&cursor=${raw.nextCursor}`), 200);
    expect(page2.items[0].at <= raw.items[4].at).toBe(true);
    const buckets = await json(await s.api(`/api/v1/devices/${d.deviceId}/telemetry?node=charger&property=temperature&from=${started}&bucket=1s`), 200);
    expect(buckets.buckets.reduce((a: number, b: any) => a + b.count, 0)).toBe(published['charger/temperature']);
    const wrong = await json(await s.api(`/api/v1/devices/${d.deviceId}/telemetry?bucket=1m`), 400);
    expect(wrong.error.code).toBe('validation_failed');
  });
});
