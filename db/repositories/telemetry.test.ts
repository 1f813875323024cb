import { createDevices } from '../../bridge/test-helpers';
import { repositoryDb } from '../../test/support/db';
import { findCommittedPackets, insertTelemetry, queryTelemetry, recordCommittedPackets, telemetryBuckets } from './telemetry';

const { db, pool } = repositoryDb();
let device: string;
const T0 = Date.parse('2026-03-01T10:00:00Z');

beforeAll(async () => {
  [device] = (await createDevices(db, 1)) as [string];
  // temperature every 20 s for 3 minutes (0..8), plus one text value
  const n = 9;
  await insertTelemetry(pool, {
    deviceIds: Array(n + 1).fill(device),
    nodes: Array(n + 1).fill('env'),
    properties: [...Array(n).fill('temperature'), 'status'],
    atMs: [...Array.from({ length: n }, (_, i) => T0 + i * 20_000), T0 + 5_000],
    values: [...Array.from({ length: n }, (_, i) => String(i)), 'ok'],
    nums: [...Array.from({ length: n }, (_, i) => i), null],
  });
});

describe('telemetry', () => {
  it('inserts a batch in one statement and returns the row count', async () => {
    const [d] = await createDevices(db, 1);
    expect(await insertTelemetry(pool, { deviceIds: [d!, d!], nodes: ['a', 'a'], properties: ['b', 'b'], atMs: [T0, T0 + 1.5], values: ['1', 'x'], nums: [1, null] })).toBe(2);
    expect(await insertTelemetry(pool, { deviceIds: [], nodes: [], properties: [], atMs: [], values: [], nums: [] })).toBe(0);
    const rows = await db('telemetry').where({ device_id: d! }).orderBy('at');
    expect(rows.map((r) => [r.at.toISOString(), r.value, r.num])).toEqual([
      ['2026-03-01T10:00:00.000Z', '1', 1],
      ['2026-03-01T10:00:00.001Z', 'x', null],
    ]);
  });

  it('keeps any text value intact (quotes, backslashes, braces, NULL, empty, unicode)', async () => {
    const [d] = await createDevices(db, 1);
    const tricky = ['a"b', 'c\\d', '{x,y}', 'NULL', 'null', '', ' spaced ', 'ünï 🚀', '\\"'];
    await insertTelemetry(pool, {
      deviceIds: tricky.map(() => d!),
      nodes: tricky.map(() => 'n'),
      properties: tricky.map((_, i) => `p${i}`),
      atMs: tricky.map((_, i) => T0 + i),
      values: tricky,
      nums: tricky.map(() => null),
    });
    const rows = await db('telemetry').where({ device_id: d! }).orderBy('at');
    expect(rows.map((r) => r.value)).toEqual(tricky);
    expect(rows.every((r) => r.num === null)).toBe(true);
  });

  it('lists raw points newest first with a keyset cursor, filtered by property and time', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const p = await queryTelemetry(db, { deviceId: device, property: 'temperature', limit: 4, cursor });
      seen.push(...p.items.map((i) => i.value));
      if (!p.nextCursor) break;
      cursor = p.nextCursor;
    }
    expect(seen).toEqual(['8', '7', '6', '5', '4', '3', '2', '1', '0']);
    const window = await queryTelemetry(db, { deviceId: device, from: new Date(T0), to: new Date(T0 + 20_000), limit: 10, order: 'asc' });
    expect(window.items.map((i) => [i.property, i.value, i.num])).toEqual([
      ['temperature', '0', 0],
      ['status', 'ok', null],
    ]);
    expect(window.items[0]!.at).toBe('2026-03-01T10:00:00.000Z');
    await expect(queryTelemetry(db, { deviceId: device, limit: 1, cursor: Buffer.from('["x","a","b"]').toString('base64url') })).rejects.toThrow(/cursor/);
  });

  it('aggregates numeric values in time buckets (avg, min, max, count)', async () => {
    const b = await telemetryBuckets(db, { deviceId: device, node: 'env', property: 'temperature', from: new Date(T0), to: new Date(T0 + 180_000), bucketSeconds: 60 });
    expect(b).toEqual([
      { bucket: '2026-03-01T10:00:00.000Z', avg: 1, min: 0, max: 2, count: 3 },
      { bucket: '2026-03-01T10:01:00.000Z', avg: 4, min: 3, max: 5, count: 3 },
      { bucket: '2026-03-01T10:02:00.000Z', avg: 7, min: 6, max: 8, count: 3 },
    ]);
    await expect(telemetryBuckets(db, { deviceId: device, node: 'env', property: 'temperature', from: T0.toString(), to: new Date(T0 + 86_400_000 * 365), bucketSeconds: 1 })).rejects.toThrow();
    await expect(telemetryBuckets(db, { deviceId: device, node: 'env', property: 'temperature', from: new Date(T0 + 1), to: new Date(T0), bucketSeconds: 60 })).rejects.toThrow(/before/);
  });
});

describe('committed packet IDs (the bridge\'s redelivery guard)', () => {
  it('records digests by packet ID across blocks, a later record replacing only its own IDs', async () => {
    const clientId = `c-${Date.now()}`;
    await recordCommittedPackets(pool, clientId, [1, 2, 255, 256, 65535], [10, -20, 30, 40, 2147483647]);
    await recordCommittedPackets(pool, clientId, [2, 300], [21, -2147483648]);
    await recordCommittedPackets(pool, `${clientId}-other`, [1], [99]);
    const found = await findCommittedPackets(pool, clientId, [1, 2, 3, 255, 256, 300, 65535]);
    expect(Object.fromEntries(found)).toEqual({ 1: 10, 2: 21, 255: 30, 256: 40, 300: -2147483648, 65535: 2147483647 });
    expect((await findCommittedPackets(pool, clientId, [])).size).toBe(0);
  });
});
