// A bridge for a test file, on the run's broker: a share group and client ID of its own, flushing
// at once, routing device answers to the stack's workflows.
//
// Every such bridge receives every device's messages (each group gets its own copy), so while two
// run, telemetry is stored twice. Files that count rows exactly ask for `exclusive`: test bridges
// hold a Postgres advisory lock, shared by the others and exclusive for those, for their lifetime.
import { startBridge, type Bridge, type BridgeOptions } from '../../bridge/bridge';
import { temporalSignaller } from '../../bridge/workflow-events';
import { createLogger } from '../../runtime/logger';
import { testEnv } from './env';
import type { Stack } from './stack';

/** The advisory lock key of test bridges on the run's broker. */
const BRIDGES_LOCK = 7_310_224;

export async function startTestBridge(s: Stack, name: string, opts: Partial<BridgeOptions> & { exclusive?: boolean } = {}): Promise<Bridge> {
  const { exclusive = false, ...options } = opts;
  // Session-level: held on one connection taken out of the stack's pool until the bridge stops.
  const conn = (await s.db.client.acquireConnection()) as { query(sql: string): Promise<unknown> };
  const release = async () => {
    await conn.query(`SELECT pg_advisory_unlock${exclusive ? '' : '_shared'}(${BRIDGES_LOCK})`).catch(() => undefined);
    await Promise.resolve(s.db.client.releaseConnection(conn)).catch(() => undefined);
  };
  await conn.query(`SELECT pg_advisory_lock${exclusive ? '' : '_shared'}(${BRIDGES_LOCK})`);
  let bridge: Bridge;
  try {
    bridge = await startBridge({
      databaseUrl: testEnv().databaseUrl,
      mqttUrl: testEnv().mqttUrl,
      group: `${name}-${process.pid}`,
      clientId: `${name}-bridge-${process.pid}`,
      flushMs: 10,
      signaller: temporalSignaller(s.temporal),
      logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'bridge'),
      ...options,
    });
  } catch (err) {
    await release();
    throw err;
  }
  const stop = bridge.stop.bind(bridge);
  return Object.assign(bridge, {
    async stop(o?: { flush?: boolean }) {
      try {
        await stop(o);
      } finally {
        await release();
      }
    },
  });
}
