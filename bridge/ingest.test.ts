// The bridge against the real Mosquitto (MQTT 5) and Postgres of the test run: what devices
// publish ends up in the tables, malformed traffic is dropped and counted.
import type { MqttClient } from 'mqtt';
import type { Db } from '../db/knex';
import { topics } from '../domain/topics';
import { listSensors } from '../db/repositories/device-properties';
import { createAlertRule, listAlerts } from '../db/repositories/alerts';
import { getConfig, setDesiredConfig } from '../db/repositories/device-config';
import { listLogs } from '../db/repositories/device-logs';
import { testEnv } from '../test/support/env';
import type { Bridge } from './bridge';
import { createDevices, isolatedDatabase, publish, publishAll, publisher, settle, testBridge, uniqueName, waitFor } from './test-helpers';
import mqtt from 'mqtt';

let db: Db;
let databaseUrl: string;
let dropDb: () => Promise<void>;
let bridge: Awaited<ReturnType<typeof testBridge>>;
let pub: MqttClient;

beforeAll(async () => {
  ({ db, url: databaseUrl, drop: dropDb } = await isolatedDatabase());
  bridge = await testBridge({ databaseUrl, logRetention: false });
  pub = await publisher();
});

afterAll(async () => {
  pub?.end(true);
  await bridge?.stop();
  await dropDb?.();
});

const metric = (b: Bridge, name: string, labels: Record<string, string> = {}) => {
  const m = b.metrics.registry.get(name) as unknown as { get(l: Record<string, string>): number };
  return m.get(labels);
};

describe('Homie self-description', () => {
  it('stores a Homie 4 device: attributes, nodes, properties and values', async () => {
    const [id] = await createDevices(db, 1);
    const d = id!;
    const messages: [string, string][] = [
      [topics.deviceAttribute(d, 'homie'), '4.0.0'],
      [topics.deviceAttribute(d, 'name'), 'Kitchen sensor'],
      [topics.state(d), 'init'],
      [topics.deviceAttribute(d, 'nodes'), 'env,relay'],
      [topics.deviceAttribute(d, 'extensions'), 'io.rdm.management:1.0.0:[3.x;4.x]'],
      [topics.nodeAttribute(d, 'env', 'name'), 'Environment'],
      [topics.nodeAttribute(d, 'env', 'type'), 'bme280'],
      [topics.nodeAttribute(d, 'env', 'properties'), 'temperature,humidity'],
      [topics.propertyAttribute(d, 'env', 'temperature', 'name'), 'Temperature'],
      [topics.propertyAttribute(d, 'env', 'temperature', 'datatype'), 'float'],
      [topics.propertyAttribute(d, 'env', 'temperature', 'unit'), '°C'],
      [topics.propertyAttribute(d, 'env', 'temperature', 'format'), '-40:85'],
      [topics.propertyAttribute(d, 'env', 'humidity', 'datatype'), 'integer'],
      [topics.propertyAttribute(d, 'env', 'humidity', 'unit'), '%'],
      [topics.nodeAttribute(d, 'relay', 'name'), 'Relay'],
      [topics.nodeAttribute(d, 'relay', 'properties'), 'on'],
      [topics.propertyAttribute(d, 'relay', 'on', 'datatype'), 'boolean'],
      [topics.propertyAttribute(d, 'relay', 'on', 'settable'), 'true'],
      [topics.property(d, 'env', 'temperature'), '21.5'],
      [topics.property(d, 'env', 'humidity'), '40'],
      [topics.property(d, 'relay', 'on'), 'false'],
      [topics.property(d, 'env', 'temperature'), '22.25'],
      [topics.set(d, 'relay', 'on'), 'true'], // the platform's own command: ignored
      [topics.state(d), 'ready'],
    ];
    await publishAll(pub, messages);
    await waitFor(async () => (await db('devices').where({ id: d }).first())?.homie_state === 'ready', 5_000, 'ready');
    const dev = await db('devices').where({ id: d }).first();
    expect(dev).toMatchObject({ homie_version: '4.0.0', name: 'Kitchen sensor', homie_state: 'ready', online: true });
    expect(dev.last_seen_at).toBeInstanceOf(Date);
    expect(dev.state_changed_at).toBeInstanceOf(Date);
    expect(dev.attributes).toMatchObject({ $nodes: 'env,relay', $extensions: 'io.rdm.management:1.0.0:[3.x;4.x]', 'env/$name': 'Environment' });

    const sensors = await waitFor(async () => {
      const s = await listSensors(db, d);
      return s.length === 3 && s.every((x) => x.payload !== null) ? s : null;
    }, 5_000, 'sensors');
    expect(sensors.map((s) => [s.node, s.property])).toEqual([
      ['env', 'humidity'],
      ['env', 'temperature'],
      ['relay', 'on'],
    ]);
    const temp = sensors.find((s) => s.property === 'temperature')!;
    expect(temp).toMatchObject({ nodeName: 'Environment', nodeType: 'bme280', name: 'Temperature', datatype: 'float', unit: '°C', format: '-40:85', settable: false, value: 22.25 });
    expect(sensors.find((s) => s.property === 'on')).toMatchObject({ nodeName: 'Relay', datatype: 'boolean', settable: true, value: false });
    expect(sensors.find((s) => s.property === 'humidity')).toMatchObject({ datatype: 'integer', unit: '%', value: 40 });

    const rows = await db('telemetry').where({ device_id: d }).orderBy('at');
    expect(rows.map((r) => [r.node, r.property, r.value, r.num])).toEqual([
      ['env', 'temperature', '21.5', 21.5],
      ['env', 'humidity', '40', 40],
      ['relay', 'on', 'false', 0],
      ['env', 'temperature', '22.25', 22.25],
    ]);
  });

  it('stores a Homie 3 device ($fw, $stats, $implementation, $localip, array nodes)', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    await publishAll(pub, [
      [topics.deviceAttribute(id, 'homie'), '3.0.1'],
      [topics.deviceAttribute(id, 'name'), 'Old thermostat'],
      [topics.state(id), 'init'],
      [topics.deviceAttribute(id, 'localip'), '192.168.1.7'],
      [topics.deviceAttribute(id, 'mac'), 'DE:AD:BE:EF:00:01'],
      [topics.deviceAttribute(id, 'fw/name'), 'thermo-fw'],
      [topics.deviceAttribute(id, 'fw/version'), '1.2.3'],
      [topics.deviceAttribute(id, 'implementation'), 'esp8266'],
      [topics.deviceAttribute(id, 'stats'), 'uptime,signal'],
      [topics.deviceAttribute(id, 'stats/interval'), '60'],
      [topics.deviceAttribute(id, 'stats/uptime'), '120'],
      [topics.deviceAttribute(id, 'nodes'), 'thermo,leds[]'],
      [topics.nodeAttribute(id, 'thermo', 'name'), 'Thermostat'],
      [topics.nodeAttribute(id, 'thermo', 'type'), 'thermostat'],
      [topics.nodeAttribute(id, 'thermo', 'properties'), 'target'],
      [topics.nodeAttribute(id, 'leds', 'array'), '0-2'],
      [topics.propertyAttribute(id, 'thermo', 'target', 'datatype'), 'float'],
      [topics.propertyAttribute(id, 'thermo', 'target', 'settable'), 'true'],
      [topics.propertyAttribute(id, 'thermo', 'target', 'unit'), '°C'],
      [topics.property(id, 'thermo', 'target'), '19.5'],
      [topics.state(id), 'ready'],
    ]);
    await waitFor(async () => (await db('devices').where({ id }).first())?.homie_state === 'ready', 5_000, 'ready');
    const dev = await db('devices').where({ id }).first();
    expect(dev).toMatchObject({ homie_version: '3.0.1', name: 'Old thermostat', firmware_version: '1.2.3', online: true });
    expect(dev.attributes).toMatchObject({
      $localip: '192.168.1.7',
      $mac: 'DE:AD:BE:EF:00:01',
      '$fw/name': 'thermo-fw',
      $implementation: 'esp8266',
      '$stats/interval': '60',
      '$stats/uptime': '120',
      $nodes: 'thermo,leds[]',
      'leds/$array': '0-2',
    });
    const sensors = await waitFor(async () => ((await listSensors(db, id)).find((s) => s.payload !== null) ? listSensors(db, id) : null), 5_000, 'sensor');
    expect(sensors).toEqual([
      expect.objectContaining({ node: 'thermo', property: 'target', nodeName: 'Thermostat', datatype: 'float', settable: true, unit: '°C', value: 19.5 }),
    ]);
  });

  it('treats an empty retained payload as a deletion, and drops properties a node no longer lists', async () => {
    const [id] = await createDevices(db, 1);
    const d = id!;
    await publishAll(pub, [
      [topics.nodeAttribute(d, 'n', 'properties'), 'a,b'],
      [topics.propertyAttribute(d, 'n', 'a', 'unit'), 'V'],
      [topics.property(d, 'n', 'a'), '1'],
      [topics.property(d, 'n', 'b'), '2'],
    ]);
    await waitFor(async () => (await db('device_properties').where({ device_id: d }).whereNotNull('value')).length === 2, 5_000, 'values');
    await publishAll(pub, [
      [topics.propertyAttribute(d, 'n', 'a', 'unit'), ''],
      [topics.property(d, 'n', 'a'), ''],
      [topics.nodeAttribute(d, 'n', 'properties'), 'a'],
    ]);
    await waitFor(async () => (await db('device_properties').where({ device_id: d })).length === 1, 5_000, 'b removed');
    const a = await db('device_properties').where({ device_id: d, node: 'n', property: 'a' }).first();
    expect(a).toMatchObject({ unit: null, value: null });
    expect(await db('telemetry').where({ device_id: d }).count({ n: '*' })).toEqual([{ n: '2' }]); // deletions are not values
  });
});

describe('values', () => {
  it('stores exactly the values published (QoS 1): current value per property, every value in telemetry', async () => {
    const ids = await createDevices(db, 20);
    const messages: [string, string][] = [];
    for (let i = 0; i < 100; i++) for (const d of ids) messages.push([topics.property(d, 'env', 'temperature'), String(i)]);
    await publishAll(pub, messages);
    await settle(bridge, db, pub, ids[0]!);
    expect(Number((await db('telemetry').whereIn('device_id', ids).where({ node: 'env' }).count({ n: '*' }))[0]!.n)).toBe(2_000);
    const current = await db('device_properties').whereIn('device_id', ids).where({ node: 'env' });
    expect(current).toHaveLength(20);
    expect(current.every((r) => r.value === '99')).toBe(true);
    const devs = await db('devices').whereIn('id', ids).whereNotNull('last_seen_at');
    expect(devs).toHaveLength(20);
  });

  it('flushes a lone message on time, not only on size', async () => {
    const slow = await testBridge({ databaseUrl, batchRows: 10_000, flushMs: 100, logRetention: false });
    try {
      const [d] = await createDevices(db, 1);
      await publish(pub, topics.property(d!, 'env', 'temperature'), '1.5');
      // 10,000-row batches are never filled by one message: that it is written at all is the timer's doing.
      await waitFor(async () => (await db('telemetry').where({ device_id: d! })).length === 2, 15_000, 'written by both bridges');
      expect(slow.stats().batches).toBeGreaterThanOrEqual(1);
    } finally {
      await slow.stop();
    }
  });
});

describe('malformed traffic', () => {
  it('drops, counts and survives: unknown topics, unknown devices, bad payloads', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    const ghost = 'ZZZZZZZZZZZZ';
    const before = (reason: string) => metric(bridge, 'rdm_bridge_messages_dropped_total', { reason });
    const b0 = { topic: before('unknown_topic'), device: before('unknown_device'), payload: before('invalid_payload'), large: before('too_large') };
    await publishAll(pub, [
      [`homie/${id.toLowerCase()}/Bad_Node/x`, '1'], // not a Homie ID
      [`homie/${id.toLowerCase()}/$rdm/unknown`, '{}'],
      [topics.property(ghost, 'env', 'temperature'), '1'],
      [topics.state(id), 'exploded'],
      [topics.propertyAttribute(id, 'env', 'temperature', 'datatype'), 'quaternion'],
      [topics.propertyAttribute(id, 'env', 'temperature', 'settable'), 'yes'],
      [topics.configReported(id), '{not json'],
      [topics.log(id), '{"level":"loud","message":"x"}'],
      [topics.commandResult(id, 'r1'), '[]'],
      [topics.property(id, 'env', 'blob'), 'x'.repeat(70 * 1024)],
      [topics.property(id, 'env', 'nul'), 'a\u0000b'],
      [topics.property(id, 'env', 'temperature'), '20'], // and a good one after all that
    ]);
    await settle(bridge, db, pub, id);
    expect(await db('telemetry').where({ device_id: id, property: 'temperature' })).toHaveLength(1);
    // Other test files publish on the same broker: counts are at least ours.
    expect(before('unknown_topic') - b0.topic).toBeGreaterThanOrEqual(2);
    expect(before('unknown_device') - b0.device).toBeGreaterThanOrEqual(1);
    expect(before('invalid_payload') - b0.payload).toBeGreaterThanOrEqual(7);
    expect(before('too_large') - b0.large).toBeGreaterThanOrEqual(1);
    const dev = await db('devices').where({ id }).first();
    expect(dev.homie_state).toBeNull();
    expect(await db('device_properties').where({ device_id: id, property: 'blob' })).toHaveLength(0);
    expect(bridge.stats().connected).toBe(true);
    const text = bridge.metrics.registry.render();
    expect(text).toMatch(/rdm_bridge_messages_dropped_total\{reason="invalid_payload"\} \d+/);
  });
});

describe('the Homie ID is lowercase', () => {
  it('drops and counts a topic that spells the device ID in uppercase (the broker ACL would not match it)', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    const dropped = () => metric(bridge, 'rdm_bridge_messages_dropped_total', { reason: 'device_id_case' });
    const before = dropped();
    await publishAll(pub, [
      [`homie/${id}/env/temperature`, '99'],
      [`homie/${id.toLowerCase().replace(/[a-z]/, (c) => c.toUpperCase())}/$state`, 'ready'], // one letter in uppercase
      [topics.property(id, 'env', 'temperature'), '20'],
    ]);
    await settle(bridge, db, pub, id);
    expect((await db('telemetry').where({ device_id: id, property: 'temperature' })).map((r) => r.value)).toEqual(['20']);
    expect((await db('devices').where({ id }).first()).homie_state).toBeNull();
    expect(dropped() - before).toBeGreaterThanOrEqual(2);
  });
});

describe('a message Postgres would refuse', () => {
  it('is caught before the write (lone surrogate in JSON), and the rest of the batch is stored', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    const invalid0 = metric(bridge, 'rdm_bridge_messages_dropped_total', { reason: 'invalid_payload' });
    const messages: [string, string][] = Array.from({ length: 20 }, (_, i) => [topics.property(id, 'env', 'counter'), String(i)]);
    // Valid JSON with a lone surrogate: JavaScript accepts it, jsonb does not.
    messages.splice(10, 0, [topics.log(id), '{"level":"info","message":"x","fields":{"k":"\\ud800"}}']);
    await publishAll(pub, messages);
    await settle(bridge, db, pub, id);
    expect(await db('telemetry').where({ device_id: id, node: 'env' }).count({ n: '*' })).toEqual([{ n: '20' }]);
    expect(metric(bridge, 'rdm_bridge_messages_dropped_total', { reason: 'invalid_payload' }) - invalid0).toBe(1);
    expect(metric(bridge, 'rdm_bridge_messages_dropped_total', { reason: 'write_failed' })).toBe(0);
    expect(await db('device_logs').where({ device_id: id })).toHaveLength(0);
  });
});

describe('online state', () => {
  it('follows $state and the last will ($state = lost)', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    const device = mqtt.connect(testEnv().mqttUrl, {
      clientId: uniqueName('dev'),
      protocolVersion: 4,
      reconnectPeriod: 0,
      will: { topic: topics.state(id), payload: Buffer.from('lost'), qos: 1, retain: true },
    });
    await new Promise((r) => device.once('connect', r));
    await publish(device, topics.state(id), 'ready', { retain: true });
    await waitFor(async () => (await db('devices').where({ id }).first()).online === true, 5_000, 'online');
    (device.stream as unknown as { destroy(): void }).destroy(); // an unclean disconnect: the broker publishes the will
    await waitFor(async () => {
      const r = await db('devices').where({ id }).first();
      return r.online === false && r.homie_state === 'lost';
    }, 5_000, 'offline');
    device.end(true);
    await publish(pub, topics.state(id), '', { retain: true }); // clean the retained state
  });
});

describe('alerts', () => {
  it('opens an alert on $state = alert and resolves it when the device leaves alert', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    const raised0 = metric(bridge, 'rdm_alerts_raised_total', { source: 'device' });
    await publishAll(pub, [[topics.state(id), 'ready'], [topics.state(id), 'alert']]);
    const open = await waitFor(async () => (await listAlerts(db, { deviceId: id, limit: 10 })).items.find((a) => a.state === 'open'), 5_000, 'open alert');
    expect(open).toMatchObject({ source: 'device', ruleId: null });
    expect((await db('devices').where({ id }).first()).online).toBe(true); // alert is connected but unwell
    await publish(pub, topics.state(id), 'alert'); // still the same alert
    await publish(pub, topics.state(id), 'ready');
    await waitFor(async () => (await listAlerts(db, { deviceId: id, limit: 10 })).items.every((a) => a.state === 'resolved'), 5_000, 'resolved');
    expect((await listAlerts(db, { deviceId: id, limit: 10 })).items).toHaveLength(1);
    expect(metric(bridge, 'rdm_alerts_raised_total', { source: 'device' }) - raised0).toBe(1);
  });

  it('opens one alert when a value crosses a rule threshold, and resolves it when it goes back', async () => {
    const model = uniqueName('model');
    const [d, other] = await createDevices(db, 2, { model });
    const id = d!;
    const rule = await createAlertRule(db, { name: 'too hot', model, node: 'env', property: 'temperature', operator: '>', threshold: 30, severity: 'critical' });
    await bridge.refreshRules();
    const raised0 = metric(bridge, 'rdm_alerts_raised_total', { source: 'rule' });
    await publishAll(pub, [[topics.property(id, 'env', 'temperature'), '25']]);
    await settle(bridge, db, pub, id);
    await publishAll(pub, [[topics.property(id, 'env', 'temperature'), '31']]);
    await settle(bridge, db, pub, id);
    await publishAll(pub, [[topics.property(id, 'env', 'temperature'), '35']]); // still above: same alert
    await settle(bridge, db, pub, id);
    await publishAll(pub, [[topics.property(other!, 'env', 'humidity'), '99']]); // another property: no rule
    await settle(bridge, db, pub, id);
    let alerts = (await listAlerts(db, { deviceId: id, limit: 10 })).items;
    expect(alerts).toEqual([expect.objectContaining({ source: 'rule', ruleId: rule.id, state: 'open', severity: 'critical', node: 'env', property: 'temperature', value: '31' })]);
    expect(metric(bridge, 'rdm_alerts_raised_total', { source: 'rule' }) - raised0).toBe(1);
    await publishAll(pub, [[topics.property(id, 'env', 'temperature'), '29']]);
    await settle(bridge, db, pub, id);
    alerts = (await listAlerts(db, { deviceId: id, limit: 10 })).items;
    expect(alerts).toEqual([expect.objectContaining({ state: 'resolved' })]);
    expect((await listAlerts(db, { deviceId: other!, limit: 10 })).items).toEqual([]);
  });
});

describe('configuration', () => {
  it('stores the reported configuration and re-sends a pending desired one when the device is ready', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    await publish(pub, topics.configReported(id), JSON.stringify({ version: 1, settings: { interval: 10 } }));
    await waitFor(async () => (await getConfig(db, id)).reportedVersion === 1, 5_000, 'reported');
    expect((await getConfig(db, id)).reported).toEqual({ interval: 10 });

    const version = await setDesiredConfig(db, id, { interval: 30, led: 'off' }, 'test'); // the device was offline
    expect(version).toBe(1);
    await db('device_config').where({ device_id: id }).update({ desired_version: 2 }); // ahead of reported (1)
    const watcher = await publisher();
    const got = new Promise<string>((resolve) => watcher.on('message', (t, p) => t === topics.configDesired(id) && p.length > 0 && resolve(p.toString())));
    await new Promise((r) => watcher.subscribe(topics.configDesired(id), { qos: 1 }, r));
    await publish(pub, topics.state(id), 'ready');
    expect(JSON.parse(await got)).toEqual({ version: 2, settings: { interval: 30, led: 'off' } });
    await waitFor(async () => (await getConfig(db, id)).sentAt !== null, 5_000, 'sent_at');
    await publish(watcher, topics.configDesired(id), '', { retain: true }); // clean the retained copy
    watcher.end(true);
  });
});

describe('logs and command results', () => {
  it('stores logs, and records a command result once', async () => {
    const [d] = await createDevices(db, 1);
    const id = d!;
    await db('device_commands').insert({ id: uniqueName('cmd'), device_id: id, command: 'ping', status: 'sent' });
    const cmd = (await db('device_commands').where({ device_id: id }).first()).id as string;
    await publishAll(pub, [
      [topics.log(id), JSON.stringify({ level: 'info', message: 'booted', time: '2026-01-02T03:04:05Z', fields: { reset: 'power' } })],
      [topics.log(id), JSON.stringify({ level: 'error', message: 'sensor timeout' })],
      [topics.commandResult(id, cmd), JSON.stringify({ ok: true, result: { rttMs: 3 } })],
      [topics.commandResult(id, cmd), JSON.stringify({ ok: false, error: 'late duplicate' })],
    ]);
    await settle(bridge, db, pub, id);
    expect(await db('device_commands').where({ id: cmd }).first()).toMatchObject({ status: 'succeeded', result: { rttMs: 3 }, error: null });
    const logs = (await listLogs(db, { deviceId: id, limit: 10 })).items;
    expect(logs.map((l) => [l.level, l.message])).toEqual(expect.arrayContaining([['info', 'booted'], ['error', 'sensor timeout']]));
    expect(logs.find((l) => l.message === 'booted')).toMatchObject({ deviceTime: '2026-01-02T03:04:05.000Z', fields: { reset: 'power' } });
  });
});

describe('log retention, online count and the metrics endpoint', () => {
  it('prunes logs by age and by the per-device cap, counts online devices, serves /metrics and /healthz', async () => {
    const [d, other] = await createDevices(db, 2);
    const id = d!;
    const old = new Date(Date.now() - 3 * 86_400_000);
    await db('device_logs').insert([0, 1, 2].map((i) => ({ device_id: other!, at: old, level: 'info', message: `old ${i}` })));
    await db('devices').where({ id: other! }).update({ online: true });
    const keeper = await testBridge({ databaseUrl, logRetention: { days: 1, perDevice: 3, intervalMs: 200 }, onlineCountMs: 100, metricsPort: 0 });
    try {
      await publishAll(pub, Array.from({ length: 8 }, (_, i): [string, string] => [topics.log(id), JSON.stringify({ level: 'debug', message: `line ${i}` })]));
      await waitFor(async () => (await db('device_logs').where({ device_id: other! })).length === 0, 5_000, 'old logs pruned');
      // Both bridges store the lines (two share groups); the cap keeps the newest 3.
      await waitFor(async () => {
        const rows = await db('device_logs').where({ device_id: id }).orderBy('id');
        return rows.length === 3 && rows.every((r) => r.message === 'line 7' || r.message === 'line 6' || r.message === 'line 5') ? rows : null;
      }, 5_000, 'capped at 3');
      await waitFor(() => metric(keeper, 'rdm_devices_online') >= 1, 5_000, 'online gauge');
      await waitFor(() => metric(keeper, 'rdm_bridge_logs_pruned_total') >= 3, 5_000, 'pruned counted');
      const text = await (await fetch(`${keeper.metricsUrl}/metrics`)).text();
      expect(text).toMatch(/^rdm_bridge_messages_total\{kind="log"\} \d+$/m);
      expect(text).toMatch(/^rdm_bridge_buffered \d+$/m);
      expect(text).toMatch(/^rdm_devices_online [1-9]\d*$/m);
      const health = await fetch(`${keeper.metricsUrl}/healthz`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { detail: unknown }).detail).toMatchObject({ protocol: 5, connected: true });
    } finally {
      await keeper.stop();
    }
  });
});
