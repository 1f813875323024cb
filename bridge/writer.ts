// Writes one batch's plan in one transaction, one statement per table. Appends (telemetry, logs)
// go first and the row-locking updates last, so two batches in flight overlap most of their work
// and hold row locks only briefly. Property rows are not created here: the admission
// (property-admission.ts) created them, within the caps, before the plan was built.
import type { PoolClient } from 'pg';
import { insertTelemetry, recordCommittedPackets } from '../db/repositories/telemetry';
import { insertLogs } from '../db/repositories/device-logs';
import { applyDeviceUpdates } from '../db/repositories/device-state';
import { describeNodes, describeProperties, removeUnlisted, updateCurrentValues } from '../db/repositories/device-properties';
import { upsertReportedConfig } from '../db/repositories/device-config';
import { recordCommandResults } from '../db/repositories/command-results';
import { openAlerts, resolveAlerts } from '../db/repositories/alerts';
import type { RowTable } from './metrics';
import type { WritePlan } from './plan';
import type { CommittedPackets } from './redelivery';

export interface WriteResult {
  rows: Record<RowTable, number>;
  alertsRaised: { device: number; rule: number };
  /** Attribute messages refused at the per-device cap (device-state.ts), with one device refused. */
  refusedAttributes: { count: number; deviceId: string | null };
}

/** `packets`: the batch's QoS 1 packet IDs, recorded in the same transaction (redelivery.ts). */
export async function writePlan(client: PoolClient, plan: WritePlan, packets?: CommittedPackets & { clientId: string }): Promise<WriteResult> {
  const rows: Record<RowTable, number> = { telemetry: 0, device_properties: 0, devices: 0, device_logs: 0, device_config: 0, device_commands: 0, alerts: 0 };
  let alertsRaised = { device: 0, rule: 0 };
  let refusedAttributes: WriteResult['refusedAttributes'] = { count: 0, deviceId: null };
  await client.query('BEGIN');
  try {
    rows.telemetry += await insertTelemetry(client, plan.telemetry);
    rows.device_logs += await insertLogs(client, plan.logs);
    const d = await applyDeviceUpdates(client, plan.devices);
    rows.devices += d.rows;
    refusedAttributes = { count: d.refusedAttributes, deviceId: d.refusedExample };
    rows.device_properties += await removeUnlisted(client, plan.unlisted);
    rows.device_properties += await describeProperties(client, plan.propertyPatches);
    rows.device_properties += await describeNodes(client, plan.nodePatches);
    rows.device_properties += await updateCurrentValues(client, plan.current);
    rows.device_config += await upsertReportedConfig(client, plan.configs);
    rows.device_commands += await recordCommandResults(client, plan.commandResults);
    alertsRaised = await openAlerts(client, plan.openAlerts);
    rows.alerts += alertsRaised.device + alertsRaised.rule;
    rows.alerts += await resolveAlerts(client, plan.resolveAlerts);
    if (packets) await recordCommittedPackets(client, packets.clientId, packets.packetIds, packets.digests);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return { rows, alertsRaised, refusedAttributes };
}

/** How to react to a failed batch write. */
export type FailureKind = 'transient' | 'missing-reference' | 'poison' | 'bug';

/**
 * - transient (connection loss, deadlock, serialization failure, too many connections, shutdown):
 *   retry the same batch;
 * - missing-reference (foreign key): a cached device or rule is gone: forget the caches, rebuild;
 * - poison (Postgres refuses a value: data exception, constraint): split the batch to find the row;
 * - bug (anything else: an SQL or code error that no retry or split can fix): retry slowly and
 *   log loudly. The bridge stalls (reading stops at its bound) rather than drop good messages.
 */
export function classifyFailure(err: unknown): FailureKind {
  const code = (err as { code?: unknown }).code;
  const message = String((err as { message?: unknown }).message ?? '');
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    if (code === '23503') return 'missing-reference';
    const cls = code.slice(0, 2);
    if (cls === '22' || cls === '23') return 'poison';
    if (['08', '25', '40', '53', '55', '57', '58', 'XX'].includes(cls)) return 'transient';
    return 'bug';
  }
  // Node's network errors (ECONNREFUSED, ECONNRESET...), pg's lost connections and pool time-outs.
  if (typeof code === 'string' && code.startsWith('E')) return 'transient';
  if (/connection|terminat|timeout|timed out/i.test(message)) return 'transient';
  return 'bug';
}
