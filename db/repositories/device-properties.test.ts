import pg from 'pg';
import type { Db } from '../knex';
import { createDevices, testDb } from '../../bridge/test-helpers';
import { testEnv } from '../../test/support/env';
import { describeNodes, describeProperties, ensureProperties, getSensor, listSensors, removeUnlisted, updateCurrentValues } from './device-properties';
import { applyDeviceUpdates, countOnline, findDevices, getDevicePresence } from './device-state';

let db: Db;
let pool: pg.Pool;

beforeAll(async () => {
  db = testDb();
  pool = new pg.Pool({ connectionString: testEnv().databaseUrl, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  await db?.destroy();
});

const T = Date.parse('2026-03-01T10:00:00Z');

describe('device properties', () => {
  it('creates announced properties with their node name, describes them, and lists them as sensors', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await applyDeviceUpdates(pool, { deviceIds: [d], seenMs: [null], states: [null], stateMs: [null], online: [null], patches: [JSON.stringify({ attributes: { 'env/$name': 'Environment' } })], maxAttributes: 256 });
    await ensureProperties(pool, { deviceIds: [d, d], nodes: ['env', 'env'], properties: ['temperature', 'humidity'] });
    await describeProperties(pool, {
      deviceIds: [d],
      nodes: ['env'],
      properties: ['temperature'],
      patches: [JSON.stringify({ name: 'Temperature', datatype: 'float', unit: '°C', settable: true })],
      atMs: [T],
    });
    await describeNodes(pool, { deviceIds: [d], nodes: ['env'], patches: [JSON.stringify({ type: 'bme280' })] });
    await updateCurrentValues(pool, { deviceIds: [d], nodes: ['env'], properties: ['temperature'], values: ['21.5'], atMs: [T] });
    const sensors = await listSensors(db, d);
    expect(sensors.map((s) => [s.node, s.property, s.nodeName, s.nodeType, s.name, s.datatype, s.unit, s.settable, s.value])).toEqual([
      ['env', 'humidity', 'Environment', 'bme280', null, 'string', null, false, null],
      ['env', 'temperature', 'Environment', 'bme280', 'Temperature', 'float', '°C', true, 21.5],
    ]);
    expect((await getSensor(db, d, 'env', 'temperature'))?.updatedAt).toBe('2026-03-01T10:00:00.000Z');
    expect(await getSensor(db, d, 'env', 'nope')).toBeNull();

    // A cleared attribute goes back to Homie's default.
    await describeProperties(pool, { deviceIds: [d], nodes: ['env'], properties: ['temperature'], patches: [JSON.stringify({ datatype: null, settable: null })], atMs: [T] });
    expect(await getSensor(db, d, 'env', 'temperature')).toMatchObject({ datatype: 'string', settable: false, unit: '°C', value: '21.5' });
  });

  it('a cleared $retained goes back to Homie’s default (retained), like every other attribute', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await ensureProperties(pool, { deviceIds: [d], nodes: ['env'], properties: ['button'] });
    const describe = (patch: object) => describeProperties(pool, { deviceIds: [d], nodes: ['env'], properties: ['button'], patches: [JSON.stringify(patch)], atMs: [T] });
    await describe({ retained: false });
    expect((await getSensor(db, d, 'env', 'button'))?.retained).toBe(false);
    await describe({ retained: null, unit: 'x' }); // the empty payload on $retained, with another attribute in the batch
    expect(await getSensor(db, d, 'env', 'button')).toMatchObject({ retained: true, unit: 'x' });
  });

  it('never moves a current value back in time', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await ensureProperties(pool, { deviceIds: [d], nodes: ['n'], properties: ['p'] });
    const up = (value: string, at: number) => updateCurrentValues(pool, { deviceIds: [d], nodes: ['n'], properties: ['p'], values: [value], atMs: [at] });
    await up('2', T + 2);
    await up('1', T + 1); // a batch that committed late
    expect((await getSensor(db, d, 'n', 'p'))?.payload).toBe('2');
    await up('3', T + 3);
    expect((await getSensor(db, d, 'n', 'p'))?.payload).toBe('3');
  });

  it('removes properties and nodes a device no longer lists', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await ensureProperties(pool, { deviceIds: [d, d, d], nodes: ['a', 'a', 'b'], properties: ['x', 'y', 'z'] });
    await removeUnlisted(pool, { deviceIds: [d], nodes: ['a'], keep: ['x'] });
    expect((await listSensors(db, d)).map((s) => `${s.node}/${s.property}`)).toEqual(['a/x', 'b/z']);
    await removeUnlisted(pool, { deviceIds: [d], nodes: [null], keep: ['b'] });
    expect((await listSensors(db, d)).map((s) => `${s.node}/${s.property}`)).toEqual(['b/z']);
  });
});

describe('device state', () => {
  it('applies $state in time order, keeps last_seen_at monotonic and merges attributes', async () => {
    const [d] = (await createDevices(db, 1, { model: 'm-x' })) as [string];
    const apply = (o: { seen?: number; state?: string; at?: number; online?: boolean; patch?: object }) =>
      applyDeviceUpdates(pool, {
        deviceIds: [d],
        seenMs: [o.seen ?? null],
        states: [o.state ?? null],
        stateMs: [o.at ?? null],
        online: [o.online ?? null],
        patches: [o.patch ? JSON.stringify(o.patch) : null],
        maxAttributes: 256,
      });
    await apply({ seen: T + 10, state: 'ready', at: T + 10, online: true, patch: { name: 'Dev', attributes: { $nodes: 'a', $mac: 'm' } } });
    await apply({ seen: T + 5, state: 'lost', at: T + 5, online: false }); // older: ignored
    let p = await getDevicePresence(db, d);
    expect(p).toMatchObject({ online: true, homieState: 'ready', name: 'Dev', lastSeenAt: new Date(T + 10).toISOString(), stateChangedAt: new Date(T + 10).toISOString(), attributes: { $nodes: 'a', $mac: 'm' } });
    await apply({ seen: T + 20, state: 'lost', at: T + 20, online: false, patch: { firmware_version: '2.0.0', attributes: { $mac: null } } });
    p = await getDevicePresence(db, d);
    expect(p).toMatchObject({ online: false, homieState: 'lost', firmwareVersion: '2.0.0', name: 'Dev', attributes: { $nodes: 'a' } });
    expect(p!.attributes).not.toHaveProperty('$mac');
    expect(await findDevices(pool, [d, 'ZZZZZZZZZZZZ'])).toEqual([{ id: d, model: 'm-x', companyId: null }]);
    expect(await getDevicePresence(db, 'ZZZZZZZZZZZZ')).toBeNull();
    const before = await countOnline(pool);
    await apply({ state: 'ready', at: T + 30, online: true });
    expect(await countOnline(pool)).toBeGreaterThanOrEqual(before + 1);
  });

  it('keeps at most maxAttributes attributes per device: new keys beyond it are refused and counted, stored ones still change or go', async () => {
    const [d, other] = (await createDevices(db, 2)) as [string, string];
    const apply = (attributes: Record<string, string | null>, ids = [d]) =>
      applyDeviceUpdates(pool, {
        deviceIds: ids,
        seenMs: ids.map(() => null),
        states: ids.map(() => null),
        stateMs: ids.map(() => null),
        online: ids.map(() => null),
        patches: ids.map(() => JSON.stringify({ attributes })),
        maxAttributes: 3,
      });
    const stored = async (id = d) => (await getDevicePresence(db, id))!.attributes;
    expect(await apply({ $a: '1', $b: '2' })).toEqual({ rows: 1, refusedAttributes: 0, refusedExample: null });
    // Room for one of the two new keys: the first in key order; the change to a stored key applies.
    expect(await apply({ $a: 'changed', $d: '4', $c: '3' })).toEqual({ rows: 1, refusedAttributes: 1, refusedExample: d });
    expect(await stored()).toEqual({ $a: 'changed', $b: '2', $c: '3' });
    // At the cap: a removal makes room, and a patch that removes one and adds one fits.
    expect(await apply({ $b: null, $e: '5' })).toMatchObject({ refusedAttributes: 0 });
    expect(await stored()).toEqual({ $a: 'changed', $c: '3', $e: '5' });
    expect(await apply({ $f: '6' })).toMatchObject({ refusedAttributes: 1 });
    // A thousand random keys at once: the full device takes none, an empty one takes three.
    const flood = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`$x${String(i).padStart(4, '0')}`, 'v']));
    expect(await apply(flood, [d, other])).toEqual({ rows: 2, refusedAttributes: 1000 + 997, refusedExample: expect.any(String) });
    expect(Object.keys(await stored())).toHaveLength(3);
    expect(await stored(other)).toEqual({ $x0000: 'v', $x0001: 'v', $x0002: 'v' });
  });
});
