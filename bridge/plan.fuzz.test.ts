// Malformed device traffic, generated: random topics and payloads (seeded, so a failure replays)
// through the plan, and through the plan and one transaction into a real Postgres. Nothing may
// throw, every message is either taken or dropped with a reason, and Postgres refuses nothing.
import pg from 'pg';
import { topics } from '../domain/topics';
import { RuleSet } from './alert-rules';
import { DeviceCache } from './device-cache';
import { DROP_REASONS, MESSAGE_KINDS } from './metrics';
import { buildPlan, type PlanContext, type WritePlan } from './plan';
import { RawBatch } from './raw-batch';
import { loadPropertyKeys } from '../db/repositories/device-properties';
import { findDevices } from '../db/repositories/device-state';
import { createAdmission } from './property-admission';
import { createDevices, isolatedDatabase } from './test-helpers';
import { writePlan } from './writer';
import type { AlertRule } from '../db/repositories/alerts';

/** mulberry32: small, seedable. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const SEGMENTS = ['env', 'temperature', 'x', '$state', '$nodes', '$properties', '$datatype', '$retained', '$settable', '$format', '$unit', '$name',
  '$homie', '$fw', 'version', '$rdm', 'config', 'set', 'log', 'cmd', 'result', 'r1', '$stats', 'uptime', '$broadcast', 'leds_0', 'leds[]', '',
  'UPPER', 'Ünï', '$', '+', '#', 'a\u0000b', 'a b', 'n'.repeat(300), '\ud83d\ude00', '$x\u0000', '1', '-', '_'] as const;

function randomText(r: Rng, max: number): string {
  const n = r.int(max);
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = r.int(10);
    s += c < 6 ? String.fromCharCode(32 + r.int(95)) : c < 8 ? String.fromCharCode(r.int(0x3000)) : c < 9 ? String.fromCharCode(0xd800 + r.int(0x800)) : '\u0000';
  }
  return s;
}

function randomTopic(r: Rng, ids: string[]): string {
  const hid = r.next() < 0.85 ? r.pick(ids).toLowerCase() : r.pick([r.pick(ids), 'zzzzzzzzzzzz', '', '$broadcast', randomText(r, 20)]);
  const shape = r.int(12);
  const d = r.pick(ids);
  if (shape === 0) return topics.state(d);
  if (shape === 1) return topics.configReported(d);
  if (shape === 2) return topics.log(d);
  if (shape === 3) return topics.commandResult(d, `r${r.int(5)}`);
  if (shape === 4) return topics.nodeAttribute(d, r.pick(['env', 'leds', 'n1']), r.pick(['properties', 'name', 'type', 'array', 'weird']));
  if (shape === 5) return topics.propertyAttribute(d, 'env', r.pick(['t', 'h']), r.pick(['datatype', 'retained', 'settable', 'unit', 'format', 'name', 'x']));
  if (shape === 6) return topics.deviceAttribute(d, r.pick(['nodes', 'homie', 'name', 'fw/version', 'stats/uptime', 'state', 'extensions']));
  if (shape === 7) return topics.property(d, r.pick(['env', 'leds_1', 'n2']), r.pick(['t', 'h', 'p']));
  const levels = 1 + r.int(6);
  const parts = ['homie', hid];
  for (let i = 0; i < levels; i++) parts.push(r.next() < 0.8 ? r.pick(SEGMENTS) : randomText(r, 12));
  return r.next() < 0.05 ? randomText(r, 40) : parts.join('/');
}

function randomPayload(r: Rng): Buffer {
  const k = r.int(16);
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  switch (k) {
    case 0: return Buffer.alloc(0);
    case 1: return Buffer.from(String(r.next() * 1e6 - 5e5));
    case 2: return Buffer.from(r.pick(['true', 'false', 'ready', 'init', 'alert', 'lost', 'float', 'integer', 'quaternion', '4.0.0', '3.0.1', 'env,leds[]', 't,h', 'A,b', ',', '1e309', 'NaN']));
    case 3: return json({ version: r.int(5) - 1, settings: { a: r.next() < 0.5 ? randomText(r, 8) : { b: [1, null] } } });
    case 4: return json({ level: r.pick(['info', 'warn', 'loud']), message: randomText(r, 30), time: r.pick(['2026-01-01T00:00:00Z', '-010000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', 'soon']), fields: r.next() < 0.5 ? { x: randomText(r, 5) } : [] });
    case 5: return json({ ok: r.next() < 0.5, result: r.next() < 0.5 ? { deep: randomText(r, 10) } : randomText(r, 10), error: r.next() < 0.3 ? randomText(r, 10) : undefined });
    case 6: return Buffer.from(`{"version":1,"settings":{"k":"\\ud800"}}`);
    case 7: return Buffer.from(`{"level":"info","message":"x","fields":{"\\u0000":1}}`);
    case 8: return Buffer.from(randomText(r, 64));
    case 9: return Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256)));
    case 10: return Buffer.alloc(64 * 1024 + r.int(3), 0x41);
    case 11: return Buffer.from('{"version":1,"settings":' + '['.repeat(3000) + ']'.repeat(3000) + '}');
    case 12: return Buffer.from(Array.from({ length: 1 + r.int(200) }, (_, i) => `p${i}`).join(','));
    default: return Buffer.from(String(r.int(100)));
  }
}

function randomBatch(r: Rng, ids: string[], size: number, t0: number): RawBatch {
  const b = new RawBatch(1);
  for (let i = 0; i < size; i++) {
    const at = r.next() < 0.02 ? r.pick([0, -1, 8.64e15, Number.MAX_SAFE_INTEGER]) : t0 + i;
    b.push(randomTopic(r, ids), randomPayload(r), at, r.next() < 0.9, i + 1, 1);
  }
  return b;
}

const rules = new RuleSet([
  { id: 'R1', name: 'hot', deviceId: null, model: null, companyId: null, node: 'env', property: 't', operator: '>', threshold: 30, severity: 'critical', enabled: true, createdBy: null, createdAt: '' } as AlertRule,
]);

function accounted(plan: WritePlan): number {
  return plan.drops.total + MESSAGE_KINDS.reduce((s, k) => s + plan.kinds[k], 0);
}

describe('fuzzed device traffic', () => {
  it('never throws in the plan: every message is taken or dropped with a known reason (5,000 cases)', async () => {
    const r = rng(20261202);
    const ids = ['0123456789AB', 'ABCDEFGHJKMN', 'CDEFGHJKMNPQ'];
    const devices = new DeviceCache(async (want) => want.filter((id) => ids.includes(id)).map((id) => ({ id, model: 'm', companyId: null })));
    const ctx: PlanContext = { devices, rules, wants: new Set(['value', 'state', 'config-reported', 'command-result']), lastSeenResolutionMs: 1_000, lastSeenWritten: new Map(), caps: { maxNodes: 3, maxPropertiesPerNode: 4, maxAttributes: 8 } };
    let dropped = 0;
    for (let b = 0; b < 100; b++) {
      const raw = randomBatch(r, ids, 50, 1_000_000 + b * 100);
      const plan = await buildPlan(raw, ctx);
      expect(accounted(plan)).toBe(raw.size);
      for (const reason of plan.drops.counts.keys()) expect(DROP_REASONS).toContain(reason);
      dropped += plan.drops.total;
    }
    expect(dropped).toBeGreaterThan(500); // the generator does produce malformed traffic
  });

  it('never makes Postgres refuse a batch (2,000 cases written, with admission and caps)', async () => {
    const iso = await isolatedDatabase();
    const pool = new pg.Pool({ connectionString: iso.url, max: 3 });
    try {
      const ids = await createDevices(iso.db, 3);
      const r = rng(7);
      const devices = new DeviceCache((want) => findDevices(pool, want), { loadProperties: (want) => loadPropertyKeys(pool, want) });
      const caps = { maxNodes: 3, maxPropertiesPerNode: 4, maxAttributes: 8 };
      const ctx: PlanContext = { devices, rules, wants: new Set(), lastSeenResolutionMs: 0, lastSeenWritten: new Map(), caps, admit: createAdmission(pool, devices, () => caps, Date.now) };
      const failures: string[] = [];
      for (let b = 0; b < 40; b++) {
        const raw = randomBatch(r, ids, 50, Date.parse('2026-06-01T00:00:00Z') + b * 100);
        const plan = await buildPlan(raw, ctx);
        expect(accounted(plan)).toBe(raw.size);
        const client = await pool.connect();
        try {
          await writePlan(client, plan);
        } catch (err) {
          failures.push(`batch ${b}: ${(err as Error).message}`);
        } finally {
          client.release();
        }
      }
      expect(failures).toEqual([]);
      const perDevice = await iso.db('device_properties').groupBy('device_id').select('device_id').countDistinct({ nodes: 'node' }).count({ n: '*' });
      for (const row of perDevice) expect(Number(row.nodes)).toBeLessThanOrEqual(caps.maxNodes);
    } finally {
      await pool.end();
      await iso.drop();
    }
  }, 120_000);
});
