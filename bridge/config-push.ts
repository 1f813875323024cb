// A device that comes online (`$state` → ready) behind on its configuration gets the desired
// settings again, retained at QoS 1, even if the broker lost its retained copy meanwhile.
import { topics } from '../domain/topics';
import type { DesiredConfigMessage } from '../domain/device-messages';
import { markConfigSent, pendingConfigs } from '../db/repositories/device-config';
import type { Sql } from '../db/repositories/sql';

export type Publish = (topic: string, payload: string, opts: { qos: 1; retain: true }) => Promise<void>;

/** Re-publishes pending desired configurations of these devices; returns how many were sent. */
export async function republishPendingConfigs(sql: Sql, deviceIds: string[], publish: Publish, now: () => number = Date.now): Promise<number> {
  const pending = await pendingConfigs(sql, deviceIds);
  if (pending.length === 0) return 0;
  const sent: string[] = [];
  await Promise.all(
    pending.map(async (p) => {
      const message: DesiredConfigMessage = { version: p.version, settings: p.settings };
      await publish(topics.configDesired(p.deviceId), JSON.stringify(message), { qos: 1, retain: true });
      sent.push(p.deviceId);
    }),
  );
  await markConfigSent(sql, sent, new Date(now()));
  return sent.length;
}
