// The local admin page while the cloud is unreachable: changes are kept and reported, with the
// configuration version they were based on, once the broker is back.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseReportedConfig } from '../domain/device-messages';
import { newDeviceId } from '../domain/ids';
import { topics } from '../domain/topics';
import { Device } from './device';
import { escapeHtml, startLocalAdmin, type LocalAdmin } from './local-admin';
import { plainClient, TreeWatcher } from './testing/mqtt-watch';
import { OwnBroker } from './testing/own-broker';

let broker: OwnBroker;
let stateDir: string;

beforeAll(async () => {
  broker = await OwnBroker.create({ persistent: true });
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-admin-'));
});

afterAll(async () => {
  await broker.dispose();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const form = (fields: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' as const });

it('escapes HTML', () => {
  expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

it('changes settings and values offline; reports them with the version they were based on when the cloud is back', async () => {
  await broker.start();
  const id = newDeviceId();
  const platform = await plainClient(broker.url);
  await platform.publishAsync(topics.configDesired(id), JSON.stringify({ version: 5, settings: { temperatureLimitC: 70 } }), { qos: 1, retain: true });
  await platform.endAsync();

  const d = new Device({ deviceId: id, secret: 'pw', mqttUrl: broker.url, model: 'ev-charger', name: '<Garage> & "Co"', stateDir, publishIntervalMs: 60_000, backoff: { initialMs: 50, maxMs: 200 } });
  const admin: LocalAdmin = await startLocalAdmin({ device: d, port: 0 });
  let watcher: TreeWatcher | null = null;
  try {
    expect(admin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const applied = d.waitFor('config-applied', 5_000);
    d.start();
    await d.waitConnected(5_000);
    expect(await applied).toMatchObject({ version: 5, source: 'mqtt' });

    // The cloud goes away (a clean broker shutdown keeps its retained messages).
    const lost = d.waitFor('disconnected', 5_000);
    await broker.stop('SIGTERM');
    await lost;

    let res = await fetch(`${admin.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    let html = await res.text();
    expect(html).toContain(`<b id="device-id">${id}</b>`);
    expect(html).toContain('&lt;Garage&gt; &amp; &quot;Co&quot;');
    expect(html).not.toContain('<Garage>');
    expect(html).toMatch(/id="connection">(offline|connecting)</);
    expect(html).toContain('id="state">ready<');

    // Settings: a JSON merge patch.
    res = await fetch(`${admin.url}/api/settings`, json({ temperatureLimitC: 65, note: '<img src=x onerror=alert(1)>' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: 5, settings: { temperatureLimitC: 65, note: '<img src=x onerror=alert(1)>' } });
    expect(d.snapshot().effectiveSettings.temperatureLimitC).toBe(65);

    // Bad input is refused and changes nothing.
    const bad: [RequestInit, number, RegExp][] = [
      [json('{nope'), 400, /not valid JSON/],
      [json([1, 2]), 400, /JSON object/],
      [json({ temperatureLimitC: 1000 }), 400, /invalid settings/],
      [json({ logLevel: 'loud', temperatureLimitC: 50 }), 400, /invalid settings/],
      [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }, 415, /application\/json/],
      [form({ other: '1' }), 400, /"settings" is missing/],
      [form({ settings: 'not json' }), 400, /not valid JSON/],
      [{ ...json({ temperatureLimitC: 50 }), headers: { 'content-type': 'application/json', origin: 'http://evil.example' } }, 403, /cross-origin/],
      [json('x'.repeat(70_000)), 413, /body over/],
    ];
    for (const [init, status, error] of bad) {
      const r = await fetch(`${admin.url}/api/settings`, init);
      expect(r.status).toBe(status);
      expect(((await r.json()) as { error: string }).error).toMatch(error);
    }
    const invalid = await fetch(`${admin.url}/api/settings`, json({ temperatureLimitC: 1000 }));
    expect(((await invalid.json()) as { details: unknown }).details).toEqual([{ key: 'temperatureLimitC', reason: 'must be between 30 and 120' }]);
    expect(d.snapshot().config.settings).toEqual({ temperatureLimitC: 65, note: '<img src=x onerror=alert(1)>' });

    // Settable values, validated like an MQTT /set.
    res = await fetch(`${admin.url}/api/sensors/charger/max-current`, json({ value: 24 }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ node: 'charger', property: 'max-current', value: 24, payload: '24' });
    res = await fetch(`${admin.url}/api/sensors/charger/relay`, form({ value: 'true' }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    expect(d.value('charger', 'relay')).toBe(true);
    const badValues: [string, RequestInit, number][] = [
      ['charger/max-current', json({ value: 99 }), 400],
      ['charger/max-current', json({ value: '12abc' }), 400],
      ['charger/max-current', json({ amount: 12 }), 400],
      ['charger/power', json({ value: 5 }), 400],
      ['charger/nothing', json({ value: 5 }), 404],
      ['charger/relay', form({ state: 'on' }), 400],
    ];
    for (const [p, init, status] of badValues) expect([p, (await fetch(`${admin.url}/api/sensors/${p}`, init)).status]).toEqual([p, status]);
    expect(d.value('charger', 'max-current')).toBe(24);
    expect((await fetch(`${admin.url}/api/sensors/charger/relay`)).status).toBe(405);
    expect((await fetch(`${admin.url}/nothing`)).status).toBe(404);

    html = await (await fetch(`${admin.url}/`)).text();
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img');
    const state = (await (await fetch(`${admin.url}/api/state`)).json()) as { deviceId: string; config: unknown; values: { property: string; payload: string }[] };
    expect(state.deviceId).toBe(id);
    expect(state.config).toEqual({ version: 5, settings: { temperatureLimitC: 65, note: '<img src=x onerror=alert(1)>' } });
    expect(state.values.find((v) => v.property === 'max-current')!.payload).toBe('24');

    // Kept on the device's memory.
    const saved = JSON.parse(fs.readFileSync(path.join(stateDir, `${id}.json`), 'utf8')) as { settings: unknown; configVersion: number };
    expect(saved).toMatchObject({ configVersion: 5, settings: { temperatureLimitC: 65 } });

    // The cloud is back: the broker still holds desired v5 (retained), which the device has
    // applied already, so its local changes stand and are reported against version 5.
    let reapplied = false;
    d.on('config-applied', () => (reapplied = true));
    const back = d.waitFor('connected', 5_000);
    await broker.start();
    await back;
    watcher = await TreeWatcher.open(broker.url, topics.deviceAll(id));
    await watcher.until(() => parseReportedConfig(watcher!.get(topics.configReported(id)) ?? '')?.settings.temperatureLimitC === 65, 3_000, 'reported local settings');
    expect(parseReportedConfig(watcher.get(topics.configReported(id))!)).toEqual({ version: 5, settings: { temperatureLimitC: 65, note: '<img src=x onerror=alert(1)>' } });
    await watcher.value(topics.configDesired(id), JSON.stringify({ version: 5, settings: { temperatureLimitC: 70 } }));
    await watcher.value(topics.property(id, 'charger', 'max-current'), '24');
    await watcher.value(topics.property(id, 'charger', 'relay'), 'true');
    expect(reapplied).toBe(false);
  } finally {
    await watcher?.close();
    await admin.close();
    await d.stop();
  }
});

it('asks for the device credentials when auth is on; binds to the given port', async () => {
  const id = newDeviceId();
  const d = new Device({ deviceId: id, secret: 'pw', mqttUrl: broker.url, model: 'lock' });
  const admin = await startLocalAdmin({ device: d, auth: { username: id, password: 'pw' } });
  try {
    const none = await fetch(`${admin.url}/api/state`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
    const basic = (u: string, p: string) => ({ headers: { authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` } });
    expect((await fetch(`${admin.url}/api/state`, basic(id, 'wrong'))).status).toBe(401);
    expect((await fetch(`${admin.url}/api/state`, basic(id, 'pwx'))).status).toBe(401);
    const ok = await fetch(`${admin.url}/api/state`, basic(id, 'pw'));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { model: string }).model).toBe('lock');
  } finally {
    await admin.close();
  }
});
