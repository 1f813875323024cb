// Caps on a device's nodes and properties: the rule (unit), the configuration, and the bridge
// against the real broker and Postgres: a device publishing thousands of distinct topics, two
// bridges sharing its stream, a restart, and GET /devices/{id}/sensors on what is stored.
import type { MqttClient } from 'mqtt';
import type { Db } from '../db/knex';
import { topics } from '../domain/topics';
import { ConfigError, loadConfig } from '../runtime/config';
import { startStack, type Stack } from '../test/support/stack';
import type { Bridge } from './bridge';
import { PropertyInventory, type Announced } from './property-caps';
import { createDevices, isolatedDatabase, publishAll, publisher, testBridge, uniqueName, waitFor } from './test-helpers';

const caps = { maxNodes: 2, maxPropertiesPerNode: 3, maxAttributes: 4 };
const none: Announced = { nodes: null, properties: new Map() };

describe('the caps rule', () => {
  it('admits new rows up to the caps, always the stored ones', () => {
    const inv = new PropertyInventory(0);
    const got = ['a/1', 'a/2', 'a/3', 'a/4', 'b/1', 'c/1', 'a/1'].map((k) => {
      const [n, p] = k.split('/') as [string, string];
      return inv.admit(n, p, none, caps);
    });
    expect(got).toEqual([null, null, null, 'too_many_properties', null, 'too_many_nodes', null]);
    expect(inv.size).toBe(4);
  });

  it('honours $nodes and $properties when announced, Homie 3 arrays included', () => {
    const inv = new PropertyInventory(0);
    const lists: Announced = { nodes: ['env', 'leds[]'], properties: new Map([['env', ['t']], ['leds', ['intensity']]]) };
    expect(inv.admit('env', 't', lists, caps)).toBeNull();
    expect(inv.admit('env', 'x', lists, caps)).toBe('unannounced');
    expect(inv.admit('other', 't', lists, caps)).toBe('unannounced');
    expect(inv.admit('leds_0', 'intensity', lists, caps)).toBeNull(); // an element of the array `leds[]`
    expect(inv.admit('leds_1', 'color', lists, caps)).toBe('unannounced');
  });

  it('lets a device re-announcing at its cap swap rows (those its new lists drop go)', () => {
    const inv = new PropertyInventory(0);
    for (const p of ['1', '2', '3']) inv.admit('a', p, none, caps);
    inv.retainListed(undefined, new Map([['a', ['3', '4']]]));
    expect(inv.admit('a', '4', none, caps)).toBeNull();
    expect([...inv.byNode.get('a')!]).toEqual(['3', '4']);
  });
});

describe('configuration', () => {
  it('has defaults and refuses what is not a positive whole number', () => {
    expect(loadConfig({})).toMatchObject({ BRIDGE_MAX_NODES_PER_DEVICE: 64, BRIDGE_MAX_PROPERTIES_PER_NODE: 128 });
    expect(loadConfig({ BRIDGE_MAX_NODES_PER_DEVICE: '8' }).BRIDGE_MAX_NODES_PER_DEVICE).toBe(8);
    for (const [name, value] of [['BRIDGE_MAX_NODES_PER_DEVICE', '0'], ['BRIDGE_MAX_PROPERTIES_PER_NODE', 'many'], ['BRIDGE_MAX_PROPERTIES_PER_NODE', '1.5']]) {
      expect(() => loadConfig({ [name!]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name!]: value })).toThrow(name);
    }
  });
});

describe('a device publishing thousands of distinct property topics', () => {
  const CAP_NODES = 4;
  const CAP_PER_NODE = 50;
  const CAP = CAP_NODES * CAP_PER_NODE;
  // The bridges write a database of this file's own (the broker is shared: another file's devices
  // are unknown there, so every count below is this file's; the API test reads it too).
  let db: Db;
  let databaseUrl: string;
  let dropDb: () => Promise<void>;
  let pub: MqttClient;
  const bridges: Bridge[] = [];

  beforeAll(async () => {
    ({ db, url: databaseUrl, drop: dropDb } = await isolatedDatabase());
    pub = await publisher();
  });

  // Every test's bridges write this one database, each in a share group of its own: one left
  // running would store the next test's messages a second time.
  afterEach(async () => {
    for (const b of bridges.splice(0)) await b.stop();
  });
  afterAll(async () => {
    pub?.end(true);
    for (const b of bridges) await b.stop();
    await dropDb?.();
  });

  const counter = (b: Bridge, name: string, labels: Record<string, string>) =>
    (b.metrics.registry.get(name) as unknown as { get(l: Record<string, string>): number }).get(labels);
  const dropped = (bs: Bridge[], reason: string) => bs.reduce((s, b) => s + counter(b, 'rdm_bridge_messages_dropped_total', { reason }), 0);
  const values = (bs: Bridge[]) => bs.reduce((s, b) => s + counter(b, 'rdm_bridge_messages_total', { kind: 'value' }), 0);
  const rows = async (id: string, on = db) => Number((await on('device_properties').where({ device_id: id }).count({ n: '*' }))[0]!.n);
  const start = async (group: string, url = databaseUrl) => {
    const b = await testBridge({ databaseUrl: url, group, maxNodesPerDevice: CAP_NODES, maxPropertiesPerNode: CAP_PER_NODE, logRetention: false });
    bridges.push(b);
    return b;
  };
  /** Waits until the bridges have taken (stored or dropped) this many more messages. */
  const taken = async (bs: Bridge[], before: number, n: number) => {
    const total = () => values(bs) + ['too_many_nodes', 'too_many_properties', 'unannounced'].reduce((s, r) => s + dropped(bs, r), 0);
    await waitFor(() => total() - before >= n, 60_000, `${n} messages taken`);
    for (const b of bs) await b.flush();
    return total() - before;
  };

  it('stores at most the caps, across two bridges and a restart, and drops and counts the rest', async () => {
    const [id] = (await createDevices(db, 1)) as [string];
    const group = uniqueName('caps');
    const two = [await start(group), await start(group)]; // one share group: the broker splits the device's stream between them
    const messages: [string, string][] = [];
    for (let n = 0; n < 20; n++) for (let p = 0; p < 100; p++) messages.push([topics.property(id, `n${n}`, `p${p}`), String(p)]);
    await publishAll(pub, messages);
    expect(await taken(two, 0, 2_000)).toBe(2_000);

    expect(await rows(id)).toBe(CAP);
    const perNode = await db('device_properties').where({ device_id: id }).groupBy('node').select('node').count({ n: '*' });
    expect(perNode).toHaveLength(CAP_NODES);
    expect(perNode.every((r) => Number(r.n) === CAP_PER_NODE)).toBe(true);
    expect(values(two)).toBe(CAP);
    expect(dropped(two, 'too_many_nodes') + dropped(two, 'too_many_properties')).toBe(2_000 - CAP);
    expect(Number((await db('telemetry').where({ device_id: id }).count({ n: '*' }))[0]!.n)).toBe(CAP); // dropped means not stored anywhere
    expect(two.every((b) => b.stats().dropped > 0)).toBe(true); // both bridges took part

    // A new bridge (nothing in memory) counts what Postgres holds: new topics are refused, stored ones still update.
    for (const b of two) await b.stop();
    bridges.length = 0;
    const fresh = await start(uniqueName('caps'));
    const stored = await db('device_properties').where({ device_id: id }).select('node', 'property');
    const again: [string, string][] = [
      ...Array.from({ length: 300 }, (_, i): [string, string] => [topics.property(id, `m${i % 30}`, `q${i}`), '1']),
      ...stored.map((r): [string, string] => [topics.property(id, r.node, r.property), 'updated']),
    ];
    const before = values([fresh]) + dropped([fresh], 'too_many_nodes') + dropped([fresh], 'too_many_properties');
    await publishAll(pub, again);
    await taken([fresh], before, again.length);
    expect(await rows(id)).toBe(CAP);
    expect(dropped([fresh], 'too_many_nodes')).toBe(300);
    expect(await db('device_properties').where({ device_id: id, value: 'updated' }).count({ n: '*' })).toEqual([{ n: String(CAP) }]);

  }, 180_000);

  it('GET /devices/{id}/sensors answers a page at most, and the pages add up to what is stored', async () => {
    // The API reads this file's own database: a bridge on the suite's shared one would also store
    // other test files' devices (it is not in their share group), doubling their telemetry.
    const stack: Stack = await startStack({ worker: false, databaseUrl });
    const b = await start(uniqueName('caps'));
    try {
      const [id] = (await createDevices(db, 1)) as [string];
      const messages: [string, string][] = [];
      for (let n = 0; n < 20; n++) for (let p = 0; p < 100; p++) messages.push([topics.property(id, `n${n}`, `p${p}`), String(p)]);
      await publishAll(pub, messages);
      await waitFor(async () => (await rows(id)) === CAP && Number((await db('telemetry').where({ device_id: id }).count({ n: '*' }))[0]!.n) === CAP, 60_000, 'the cap reached');
      await b.flush();
      expect(await rows(id)).toBe(CAP);
      await pageThrough(stack, id);
    } finally {
      await stack.stop();
    }
  }, 180_000);

  async function pageThrough(stack: Stack, id: string) {
    const page = async (q: string) => {
      const r = await stack.api(`/api/v1/devices/${id}/sensors${q}`);
      expect(r.status).toBe(200);
      return (await r.json()) as { items: { node: string; property: string }[]; nextCursor: string | null };
    };
    const first = await page('');
    expect(first.items).toHaveLength(100);
    let seen = first.items.length;
    for (let cursor = first.nextCursor; cursor; ) {
      const next = await page(`?cursor=${cursor}`);
      seen += next.items.length;
      cursor = next.nextCursor;
    }
    expect(seen).toBe(CAP);
    const all = await page('?limit=1000');
    expect(all.items).toHaveLength(CAP);
    expect(all.nextCursor).toBeNull();
    expect((await stack.api(`/api/v1/devices/${id}/sensors?limit=1001`)).status).toBe(400);
    const foreign = Buffer.from(JSON.stringify(['x', 1])).toString('base64url');
    const bad = await stack.api(`/api/v1/devices/${id}/sensors?cursor=${foreign}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBeDefined();
  }

  it('keeps at most BRIDGE_MAX_ATTRIBUTES_PER_DEVICE attributes per device, drops the rest with a reason; IDs and attribute names longer than 64 are not Homie topics', async () => {
    const [id] = (await createDevices(db, 1)) as [string];
    const b = await testBridge({ databaseUrl, group: uniqueName('caps'), maxAttributesPerDevice: 10, logRetention: false });
    bridges.push(b);
    // One attribute per message, so batches of every size form: the cap holds whatever they are.
    const flood: [string, string][] = Array.from({ length: 500 }, (_, i) => [topics.deviceAttribute(id, `x${i}`), 'v']);
    await publishAll(pub, [...flood, [topics.nodeAttribute(id, 'n'.repeat(130), 'name'), 'long'], [topics.deviceAttribute(id, `y/${'z'.repeat(130)}`), 'long']]);
    const attrs = async () => Object.keys((await db('devices').where({ id }).first()).attributes as object);
    await waitFor(() => dropped([b], 'too_many_attributes') === 490 && dropped([b], 'unknown_topic') === 2, 60_000, 'all taken');
    expect(await attrs()).toHaveLength(10);
    // Stored attributes still change, and a removal makes room for a new one.
    const kept = (await attrs())[0]!;
    await publishAll(pub, [[topics.device(id) + '/' + kept, ''], [topics.deviceAttribute(id, 'fw/name'), 'firmware']]);
    await waitFor(async () => (await attrs()).includes('$fw/name'), 30_000, 'the new attribute stored');
    expect(await attrs()).toHaveLength(10);
    expect(await attrs()).not.toContain(kept);
  }, 120_000);

  it('drops properties a device did not announce, and keeps a Homie 3 array’s elements', async () => {
    const [id] = (await createDevices(db, 1)) as [string];
    const b = await start(uniqueName('caps'));
    const setup: [string, string][] = [
      [topics.deviceAttribute(id, 'homie'), '3.0.1'],
      [topics.deviceAttribute(id, 'nodes'), 'env,leds[]'],
      [topics.nodeAttribute(id, 'env', 'properties'), 'temperature'],
      [topics.nodeAttribute(id, 'leds', 'properties'), 'intensity'],
      [topics.nodeAttribute(id, 'leds', 'array'), '0-1'],
    ];
    await publishAll(pub, setup);
    await waitFor(async () => (await db('devices').where({ id }).first())?.attributes?.['leds/$properties'] === 'intensity', 10_000, 'announced');
    const before = dropped([b], 'unannounced');
    const v0 = values([b]);
    await publishAll(pub, [
      [topics.property(id, 'env', 'temperature'), '20'],
      [topics.property(id, 'env', 'pressure'), '1000'], // not in env/$properties
      [topics.property(id, 'garage', 'door'), 'open'], // not in $nodes
      [topics.property(id, 'leds_0', 'intensity'), '10'],
      [topics.property(id, 'leds_1', 'intensity'), '90'],
      [topics.property(id, 'leds_1', 'color'), 'red'], // not in leds/$properties
    ]);
    await waitFor(() => values([b]) - v0 + dropped([b], 'unannounced') - before >= 6, 10_000, 'taken');
    await b.flush();
    expect(dropped([b], 'unannounced') - before).toBe(3);
    const keys = (await db('device_properties').where({ device_id: id }).whereNotNull('value').orderBy(['node', 'property'])).map((r) => `${r.node}/${r.property}=${r.value}`);
    expect(keys).toEqual(['env/temperature=20', 'leds_0/intensity=10', 'leds_1/intensity=90']);
    // Re-announcing $nodes keeps the array's elements.
    await publishAll(pub, [[topics.deviceAttribute(id, 'nodes'), 'leds[]']]);
    await waitFor(async () => (await rows(id)) === 3, 10_000, 'env removed');
    expect((await db('device_properties').where({ device_id: id }).orderBy(['node', 'property'])).map((r) => `${r.node}/${r.property}`)).toEqual([
      'leds/intensity',
      'leds_0/intensity',
      'leds_1/intensity',
    ]);
  }, 60_000);
});
