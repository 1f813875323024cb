// Shared by the bridge's integration tests: devices in Postgres, a publisher, a bridge with
// unique names (no crosstalk with other tests or earlier runs on the same broker), waiting.
import mqtt, { type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { createDb, migrateLatest, type Db } from '../db/knex';
import { newDeviceId, newEntityId } from '../domain/ids';
import { testEnv } from '../test/support/env';
import { Registry } from '../runtime/metrics';
import { startBridge, type Bridge, type BridgeOptions } from './bridge';

export const quietLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function testDb(url = testEnv().databaseUrl): Db {
  return createDb(url, { min: 0, max: 4 });
}

/**
 * A migrated database of its own for one test file: every test bridge subscribes to all device
 * traffic on the shared broker, so with one database a bridge of another file would write this
 * file's devices too. Here other files' devices are simply unknown.
 */
export async function isolatedDatabase(): Promise<{ url: string; db: Db; drop(): Promise<void> }> {
  const base = new URL(testEnv().databaseUrl);
  const name = `${base.pathname.slice(1)}_${randomBytes(4).toString('hex')}`;
  const adminUrl = new URL(base.toString());
  adminUrl.pathname = '/postgres';
  const admin = createDb(adminUrl.toString(), { min: 0, max: 1 });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), { min: 0, max: 4 });
  await migrateLatest(db);
  return {
    url: url.toString(),
    db,
    drop: async () => {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}

/** Creates `count` devices (with a batch) and returns their IDs. */
export async function createDevices(db: Db, count: number, opts: { model?: string; companyId?: string } = {}): Promise<string[]> {
  const batchId = newEntityId();
  await db('batches').insert({ id: batchId, name: `bridge-test-${batchId}`, count, model: opts.model ?? null, company_id: opts.companyId ?? null });
  const ids = Array.from({ length: count }, () => newDeviceId());
  await db('devices').insert(
    ids.map((id, seq) => ({ id, batch_id: batchId, seq, secret_hash: 'x', pairing_code_hash: 'x', model: opts.model ?? null, company_id: opts.companyId ?? null })),
  );
  return ids;
}

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

/** A bridge with its own share group, client ID and metrics; short sessions so the broker forgets it. */
export async function testBridge(overrides: Partial<BridgeOptions> = {}): Promise<Bridge & { registry: Registry }> {
  const registry = overrides.metrics ?? new Registry();
  const b = await startBridge({
    databaseUrl: testEnv().databaseUrl,
    mqttUrl: testEnv().mqttUrl,
    group: uniqueName('g'),
    clientId: uniqueName('rdm-bridge-test'),
    sessionExpirySeconds: 60,
    batchRows: 500,
    flushMs: 20,
    maxBuffered: 20_000,
    lastSeenResolutionMs: 0,
    logger: quietLogger(),
    rulesRefreshMs: 60_000,
    ...overrides,
    metrics: registry,
  });
  return Object.assign(b, { registry });
}

export async function publisher(): Promise<MqttClient> {
  const c = mqtt.connect(testEnv().mqttUrl, { protocolVersion: 5, clientId: uniqueName('pub'), reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => {
      (c.stream as Socket).setNoDelay(true);
      resolve();
    });
    c.once('error', reject);
  });
  return c;
}

export function publish(c: MqttClient, topic: string, payload: string | Buffer, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) =>
    c.publish(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve())),
  );
}

/** Publishes in order, QoS 1, at most `window` unacknowledged at a time. */
export async function publishAll(c: MqttClient, messages: [string, string][], window = 500): Promise<void> {
  const inflight = new Set<Promise<void>>();
  for (const [t, p] of messages) {
    const pr = publish(c, t, p).finally(() => inflight.delete(pr));
    inflight.add(pr);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

/** Polls until `check` returns a truthy value (returned), or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the bridge has committed everything `pub` published before: a marker value goes
 * through the same connection (MQTT keeps its order), and once it is stored a flush covers
 * every batch before it.
 */
export async function settle(bridge: Bridge, db: Db, pub: MqttClient, deviceId: string): Promise<void> {
  const marker = uniqueName('m');
  await publish(pub, `homie/${deviceId.toLowerCase()}/test/marker`, marker);
  await waitFor(async () => (await db('telemetry').where({ device_id: deviceId, node: 'test', property: 'marker', value: marker })).length > 0, 10_000, 'marker');
  await bridge.flush();
}
