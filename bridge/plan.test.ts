// Classification and validation of a batch, without a database (the device lookup is faked).
import { topics } from '../domain/topics';
import type { AlertRule } from '../db/repositories/alerts';
import { RuleSet } from './alert-rules';
import { DeviceCache } from './device-cache';
import { buildPlan, type PlanContext } from './plan';
import { RawBatch } from './raw-batch';

const D1 = '0123456789AB';
const D2 = 'ABCDEFGHJKMN';
const GHOST = 'ZZZZZZZZZZZZ';

function rule(over: Partial<AlertRule> = {}): AlertRule {
  return {
    id: 'R1', name: 'hot', deviceId: null, model: null, companyId: null, node: 'env', property: 'temperature',
    operator: '>', threshold: 30, severity: 'critical', enabled: true, createdBy: null, createdAt: '', ...over,
  };
}

function context(over: Partial<PlanContext> = {}): PlanContext & { lookups: string[][] } {
  const lookups: string[][] = [];
  const devices = new DeviceCache(async (ids) => {
    lookups.push(ids);
    return ids.filter((id) => id !== GHOST).map((id) => ({ id, model: id === D1 ? 'm1' : 'm2', companyId: null }));
  });
  return { devices, rules: new RuleSet([]), wants: new Set(), lastSeenResolutionMs: 0, lastSeenWritten: new Map(), lookups, ...over };
}

function batch(messages: [string, string | Buffer, { at?: number; live?: boolean }?][]): RawBatch {
  const b = new RawBatch(1);
  messages.forEach(([t, p, o], i) => b.push(t, Buffer.isBuffer(p) ? p : Buffer.from(p), o?.at ?? 1_000 + i, o?.live ?? true, i + 1, 1));
  return b;
}

describe('buildPlan', () => {
  it('appends every value to telemetry and keeps the last value per property', async () => {
    const ctx = context();
    const plan = await buildPlan(
      batch([
        [topics.property(D1, 'env', 'temperature'), '20.5'],
        [topics.property(D1, 'env', 'temperature'), '21'],
        [topics.property(D2, 'env', 'temperature'), 'warm'],
        [topics.property(D1, 'relay', 'on'), 'true'],
      ]),
      ctx,
    );
    expect(plan.telemetry.values).toEqual(['20.5', '21', 'warm', 'true']);
    expect(plan.telemetry.nums).toEqual([20.5, 21, null, 1]);
    expect(plan.current.deviceIds.map((d, i) => `${d}/${plan.current.nodes[i]}/${plan.current.properties[i]}=${plan.current.values[i]}`)).toEqual([
      `${D1}/env/temperature=21`,
      `${D1}/relay/on=true`,
      `${D2}/env/temperature=warm`,
    ]);
    expect(plan.kinds.value).toBe(4);
    expect(ctx.lookups).toEqual([[D1, D2]]); // one lookup for the batch
    expect(plan.devices.deviceIds).toEqual([D1, D2]);
    expect(plan.devices.seenMs).toEqual([1_003, 1_002]);
  });

  it('treats an empty payload as a deletion and a replayed retained message as no news', async () => {
    const plan = await buildPlan(
      batch([
        [topics.property(D1, 'env', 'temperature'), ''],
        [topics.property(D1, 'env', 'humidity'), '40', { live: false }],
      ]),
      context(),
    );
    expect(plan.telemetry.values).toEqual([]);
    expect(plan.current.properties).toEqual(['humidity', 'temperature']);
    expect(plan.current.values).toEqual(['40', null]);
    expect(plan.devices.seenMs).toEqual([1_000]);
  });

  it('drops what it cannot store, with a reason, and keeps the rest', async () => {
    const plan = await buildPlan(
      batch([
        ['something/else', '1'],
        [`homie/${D1.toLowerCase()}/Bad/x`, '1'],
        [topics.property(GHOST, 'env', 'temperature'), '1'],
        [topics.state(D1), 'exploded'],
        [topics.deviceAttribute(D1, 'homie'), 'five'],
        [topics.deviceAttribute(D1, 'nodes'), 'a,B'],
        [topics.propertyAttribute(D1, 'n', 'p', 'datatype'), 'quaternion'],
        [topics.propertyAttribute(D1, 'n', 'p', 'retained'), 'maybe'],
        [topics.configReported(D1), '{"version":-1,"settings":{}}'],
        [topics.configReported(D1), '{"version":1,"settings":{"a":"\\u0000"}}'],
        [topics.log(D1), 'not json'],
        [topics.commandResult(D1, 'req1'), '{"ok":"yes"}'],
        [topics.property(D1, 'env', 'big'), 'x'.repeat(64 * 1024 + 1)],
        [topics.property(D1, 'env', 'nul'), Buffer.from([0x31, 0x00])],
        [topics.set(D1, 'env', 'temperature'), '5'],
        [topics.configDesired(D1), '{}'],
        [topics.command(D1, 'req2'), '{}'],
        ['homie/$broadcast/alert', 'fire'],
        [topics.property(D1, 'env', 'temperature'), '20'],
      ]),
      context(),
    );
    const drops = Object.fromEntries([...plan.drops.counts].map(([r, d]) => [r, d.count]));
    expect(drops).toEqual({ unknown_topic: 2, unknown_device: 1, invalid_payload: 10, too_large: 1 });
    expect(plan.drops.total).toBe(14);
    expect(plan.kinds.ignored).toBe(4);
    expect(plan.telemetry.values).toEqual(['20']);
    expect(plan.devices.states).toEqual([null]);
  });

  it('an attribute name Postgres cannot key does not cost the device its other attributes', async () => {
    const plan = await buildPlan(batch([[`homie/${D1.toLowerCase()}/$x\u0000y`, '1'], [topics.deviceAttribute(D1, 'name'), 'Thermo']]), context());
    expect(JSON.parse(plan.devices.patches[0]!)).toEqual({ name: 'Thermo' });
    expect(plan.drops.counts.get('unknown_topic')?.count).toBe(1);
  });

  it('describes devices, nodes and properties (Homie 4 and 3)', async () => {
    const ctx = context();
    const plan = await buildPlan(
      batch([
        [topics.deviceAttribute(D1, 'homie'), '3.0.1'],
        [topics.deviceAttribute(D1, 'name'), 'Thermo'],
        [topics.deviceAttribute(D1, 'fw/version'), '1.0.0'],
        [topics.deviceAttribute(D1, 'stats/uptime'), '12'],
        [topics.deviceAttribute(D1, 'nodes'), 'env,leds[]'],
        [topics.deviceAttribute(D1, 'localip'), ''],
        [topics.nodeAttribute(D1, 'env', 'name'), 'Environment'],
        [topics.nodeAttribute(D1, 'env', 'properties'), 'temperature,humidity'],
        [topics.propertyAttribute(D1, 'env', 'temperature', 'datatype'), 'float'],
        [topics.propertyAttribute(D1, 'env', 'temperature', 'settable'), 'false'],
        [topics.propertyAttribute(D1, 'env', 'temperature', 'unit'), ''],
        [topics.state(D1), 'ready'],
      ]),
      ctx,
    );
    expect(plan.devices.states).toEqual(['ready']);
    expect(plan.devices.online).toEqual([true]);
    expect(JSON.parse(plan.devices.patches[0]!)).toEqual({
      homie_version: '3.0.1',
      name: 'Thermo',
      firmware_version: '1.0.0',
      attributes: { '$stats/uptime': '12', $nodes: 'env,leds[]', $localip: null, 'env/$name': 'Environment', 'env/$properties': 'temperature,humidity' },
    });
    expect(plan.unlisted).toEqual({ deviceIds: [D1, D1], nodes: [null, 'env'], keep: ['env,leds[]', 'temperature,humidity'] });
    expect([...ctx.devices.properties(D1)!.byNode].map(([n, ps]) => [n, [...ps]])).toEqual([['env', ['temperature', 'humidity']]]);
    expect(plan.propertyPatches.patches.map((p) => JSON.parse(p))).toEqual([{ datatype: 'float', settable: false, unit: null }]);
    expect(plan.nodePatches.patches.map((p) => JSON.parse(p))).toEqual([{ name: 'Environment' }]);
    expect(plan.readyDevices).toEqual([D1]);
  });

  it('opens and resolves device alerts from $state', async () => {
    const plan = await buildPlan(batch([[topics.state(D1), 'alert'], [topics.state(D1), 'ready'], [topics.state(D2), 'alert']]), context());
    expect(plan.openAlerts.deviceIds).toEqual([D1, D2]);
    expect(plan.openAlerts.sources).toEqual(['device', 'device']);
    expect(plan.resolveAlerts.deviceIds).toEqual([D1]); // D1 left alert within the batch; D2 is still in it
    expect(plan.devices.states).toEqual(['ready', 'alert']);
  });

  it('evaluates threshold rules in scope: opens on crossing, resolves on the way back', async () => {
    const rules = new RuleSet([rule({ model: 'm1' }), rule({ id: 'R2', property: 'humidity', operator: '<', threshold: 10 })]);
    const plan = await buildPlan(
      batch([
        [topics.property(D1, 'env', 'temperature'), '25'],
        [topics.property(D1, 'env', 'temperature'), '31'],
        [topics.property(D1, 'env', 'temperature'), '35'],
        [topics.property(D2, 'env', 'temperature'), '99'], // model m2: out of the rule's scope
        [topics.property(D2, 'env', 'humidity'), '5'],
        [topics.property(D2, 'env', 'humidity'), '50'],
      ]),
      context({ rules }),
    );
    const O = plan.openAlerts;
    expect(O.deviceIds.map((d, i) => [d, O.ruleIds[i], O.values[i], O.atMs[i]])).toEqual([
      [D1, 'R1', '31', 1_001],
      [D2, 'R2', '5', 1_004],
    ]);
    expect(O.messages[0]).toContain('hot');
    const R = plan.resolveAlerts;
    expect(R.deviceIds.map((d, i) => [d, R.ruleIds[i], R.atMs[i]])).toEqual([[D2, 'R2', 1_005]]);
  });

  it('a rule out of a device’s scope skips only that rule: the other rules, the value and last-seen still count', async () => {
    const D3 = 'CDEFGHJKMNPQ';
    // Rules on one property, in index order: scoped to D2, to model m1 (D1), then to every device.
    const rules = new RuleSet([
      rule({ id: 'only-d2', deviceId: D2 }),
      rule({ id: 'only-m1', model: 'm1' }),
      rule({ id: 'all', threshold: 40 }),
    ]);
    const plan = await buildPlan(
      batch([
        [topics.property(D1, 'env', 'temperature'), '50'],
        [topics.property(D2, 'env', 'temperature'), '50'],
        [topics.property(D3, 'env', 'temperature'), '50'],
      ]),
      context({ rules }),
    );
    const O = plan.openAlerts;
    expect(O.deviceIds.map((d, i) => `${d}:${O.ruleIds[i]}`).sort()).toEqual(
      [`${D1}:only-m1`, `${D1}:all`, `${D2}:only-d2`, `${D2}:all`, `${D3}:all`].sort(),
    );
    expect(plan.kinds.value).toBe(3);
    expect(plan.devices.deviceIds).toEqual([D1, D2, D3].sort());
    expect(plan.devices.seenMs.every((s) => s !== null)).toBe(true);
  });

  it('stores logs, reported configs (last per device) and command results (first per request)', async () => {
    const plan = await buildPlan(
      batch([
        [topics.log(D1), JSON.stringify({ level: 'warn', message: 'low battery', time: '2026-01-01T00:00:00+02:00', fields: { v: 3.1 } })],
        [topics.configReported(D1), JSON.stringify({ version: 1, settings: { a: 1 } })],
        [topics.configReported(D1), JSON.stringify({ version: 2, settings: { a: 2 } })],
        [topics.commandResult(D1, 'req-1'), JSON.stringify({ ok: false, error: 'no' })],
        [topics.commandResult(D1, 'req-1'), JSON.stringify({ ok: true })],
      ]),
      context(),
    );
    expect(plan.logs).toMatchObject({ levels: ['warn'], messages: ['low battery'], deviceTimes: ['2025-12-31T22:00:00.000Z'], fields: ['{"v":3.1}'] });
    expect(plan.configs).toMatchObject({ deviceIds: [D1], versions: [2], settings: ['{"a":2}'] });
    expect(plan.commandResults).toMatchObject({ requestIds: ['req-1'], ok: [false], errors: ['no'] });
    expect(plan.logDevices).toEqual([D1]);
  });

  it('writes last_seen_at at most once per resolution interval, unless something else changed', async () => {
    const ctx = context({ lastSeenResolutionMs: 1_000, lastSeenWritten: new Map([[D1, 900], [D2, -500]]) });
    const plan = await buildPlan(batch([[topics.property(D1, 'env', 't'), '1'], [topics.property(D2, 'env', 't'), '1']]), ctx);
    expect(plan.devices.deviceIds).toEqual([D2]);
    const plan2 = await buildPlan(batch([[topics.property(D1, 'env', 't'), '1'], [topics.state(D1), 'ready']]), ctx);
    expect(plan2.devices.deviceIds).toEqual([D1]);
    expect(plan2.devices.seenMs).toEqual([1_001]);
  });

  it('builds workflow events only of the types a route wants', async () => {
    const messages: [string, string][] = [[topics.state(D1), 'ready'], [topics.property(D1, 'ota', 'progress'), '50']];
    expect((await buildPlan(batch(messages), context())).events).toEqual([]);
    const plan = await buildPlan(batch(messages), context({ wants: new Set(['value']) }));
    expect(plan.events).toEqual([{ type: 'value', deviceId: D1, node: 'ota', property: 'progress', payload: '50', at: 1_001 }]);
  });

  it("turns a device's pairing answer into an event (stored nowhere), drops a malformed one, ignores the platform's own pairing messages", async () => {
    const messages: [string, string][] = [
      [topics.pairingResponse(D1), JSON.stringify({ pairingId: 'P1', accept: true })],
      [topics.pairingResponse(D2), JSON.stringify({ pairingId: 'P2', accept: 'yes' })],
      [topics.pairingRequest(D1), JSON.stringify({ pairingId: 'P1', expiresAt: '2030-01-01T00:00:00Z' })],
      [topics.owner(D1), JSON.stringify({ ownerId: 'U1' })],
    ];
    const plan = await buildPlan(batch(messages), context({ wants: new Set(['pairing-response']) }));
    expect(plan.events).toEqual([{ type: 'pairing-response', deviceId: D1, pairingId: 'P1', accept: true, at: 1_000 }]);
    expect(plan.kinds).toMatchObject({ pairing_response: 1, ignored: 2 });
    expect(plan.drops.total).toBe(1);
    expect(plan.telemetry.deviceIds).toEqual([]);
  });

  it("turns a device's OTA report into an event for its lifecycle, drops a malformed one, ignores the platform's own OTA requests", async () => {
    const messages: [string, string][] = [
      [topics.otaReport(D1), JSON.stringify({ updateId: 'U1', state: 'downloading', progress: 40 })],
      [topics.otaReport(D2), JSON.stringify({ updateId: 'U2', state: 'exploded' })],
      [topics.otaReport(D2), '{"updateId":"U2","state":"failed"'],
      [topics.otaSet(D1), JSON.stringify({ updateId: 'U1', cancel: true })],
    ];
    expect((await buildPlan(batch(messages), context())).events).toEqual([]);
    const plan = await buildPlan(batch(messages), context({ wants: new Set(['ota-report']) }));
    expect(plan.events).toEqual([{ type: 'ota-report', deviceId: D1, report: { updateId: 'U1', state: 'downloading', progress: 40 }, at: 1_000 }]);
    expect(plan.kinds).toMatchObject({ ota_report: 1, ignored: 1 });
    expect(plan.drops.total).toBe(2);
  });
});
