// What must hold after the run, each check with the counts it compared:
// - the batch's devices are in Postgres exactly once (and only one batch was made);
// - each device's Postgres status (and version) equals its lifecycle workflow's state and its
//   DeviceStatus search attribute, and is the status the drive asked for;
// - every status change was applied once: the history holds exactly the changes asked for, in an
//   unbroken chain, and every bulk operation's tally adds up (requested = changed + unchanged +
//   refused) and matches the history rows it wrote;
// - telemetry: every value the fleet had acknowledged (PUBACK at QoS 1) is stored exactly once.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Db } from '../../db/knex';
import { deviceWorkflowId, lifecycleStateQuery, type LifecycleState } from '../../domain/messages';
import { SA } from '../../domain/search-attributes';
import type { Fleet } from '../../firmware/fleet';
import { sleep } from '../bench/support';
import type { WorkloadResult } from './workload';

export interface Check {
  name: string;
  /** What was compared, in numbers. */
  detail: string;
  mismatches: number;
  /** A few examples of what did not match. */
  examples: string[];
}

const MAX_EXAMPLES = 5;

class CheckBuilder {
  mismatches = 0;
  examples: string[] = [];
  constructor(readonly name: string) {}
  fail(example: string, n = 1): void {
    this.mismatches += n;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(example);
  }
  done(detail: string): Check {
    return { name: this.name, detail, mismatches: this.mismatches, examples: this.examples };
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

interface DeviceRow {
  id: string;
  seq: number;
  status: string;
  status_version: number;
}

export async function devicesOnce(db: Db, r: WorkloadResult, n: number): Promise<Check> {
  const c = new CheckBuilder('devices in Postgres exactly once');
  const batches = await db('batches').select('id', 'count', 'provisioning_status', 'devices_created', 'workflows_started');
  if (batches.length !== 1) c.fail(`${batches.length} batches exist (one POST, retried with the same Idempotency-Key, must make one)`, Math.abs(batches.length - 1));
  const b = batches.find((x) => x.id === r.batchId);
  if (!b) c.fail(`batch ${r.batchId} is not in Postgres`);
  else if (b.provisioning_status !== 'ready' || b.devices_created !== n || b.workflows_started !== n) {
    c.fail(`batch row: ${b.provisioning_status}, devices_created ${b.devices_created}, workflows_started ${b.workflows_started} (expected ready, ${n}, ${n})`);
  }
  const rows: DeviceRow[] = await db('devices').where({ batch_id: r.batchId }).select('id', 'seq');
  const ids = new Set(rows.map((x) => x.id));
  const seqs = new Map<number, number>();
  for (const x of rows) seqs.set(x.seq, (seqs.get(x.seq) ?? 0) + 1);
  if (rows.length !== n) c.fail(`${rows.length} device rows for ${n} devices`, Math.abs(rows.length - n));
  if (ids.size !== rows.length) c.fail(`${rows.length - ids.size} device IDs appear twice`, rows.length - ids.size);
  let badSeq = 0;
  for (let s = 0; s < n; s++) if (seqs.get(s) !== 1) badSeq++;
  if (badSeq) c.fail(`${badSeq} of the seqs 0..${n - 1} are missing or repeated`, badSeq);
  if (r.csvRows !== n) c.fail(`devices.csv had ${r.csvRows} rows`, Math.abs(r.csvRows - n));
  return c.done(`${batches.length} batch, ${rows.length} device rows, ${ids.size} distinct IDs, ${seqs.size} distinct seqs, devices.csv ${r.csvRows} rows (expected ${n})`);
}

export async function lifecycleWorkflows(temporal: Client, r: WorkloadResult, n: number): Promise<Check> {
  const c = new CheckBuilder('one running lifecycle workflow per device');
  const q = `WorkflowType = "deviceLifecycle" AND BatchId = "${r.batchId}"`;
  let all = 0;
  let running = 0;
  // Visibility lags behind the workflows by a moment.
  for (let i = 0; i < 20; i++) {
    all = (await temporal.workflow.count(q)).count;
    running = (await temporal.workflow.count(`${q} AND ExecutionStatus = "Running"`)).count;
    if (all === n && running === n) break;
    await sleep(500);
  }
  if (all !== n) c.fail(`${all} lifecycle executions for ${n} devices`, Math.abs(all - n));
  if (running !== n) c.fail(`${running} running for ${n} devices`, Math.abs(running - n));
  return c.done(`${all} executions, ${running} running (expected ${n})`);
}

/** Postgres status = workflow state = DeviceStatus search attribute = what the drive asked for. */
/**
 * The platform frees a `manufactured` device on its authenticated connection (the lifecycle
 * decides, actor `system`), and the fleet is connected throughout: a device the drive left
 * `manufactured` may since have been moved to `free` by the system. That is the product at work,
 * not a mismatch: it is expected (one change more). Returns how many devices it concerned.
 */
export async function expectFirstConnections(db: Db, r: WorkloadResult): Promise<number> {
  const freed = (await db('device_status_events as e')
    .join('devices as d', 'd.id', 'e.device_id')
    .where('d.batch_id', r.batchId)
    .where({ 'e.from_status': 'manufactured', 'e.to_status': 'free', 'e.actor': 'system' })
    .whereRaw('e.version = d.status_version')
    .pluck('e.device_id')) as string[];
  let n = 0;
  for (const id of freed) {
    const want = r.expected.get(id);
    if (want?.status !== 'manufactured') continue;
    r.expected.set(id, { status: 'free', changes: want.changes + 1 });
    n++;
  }
  return n;
}

export async function statusesAgree(db: Db, temporal: Client, r: WorkloadResult): Promise<Check> {
  const c = new CheckBuilder('status: Postgres = workflow state = search attribute = requested');
  const rows: DeviceRow[] = await db('devices').where({ batch_id: r.batchId }).select('id', 'status', 'status_version');
  const states = await mapLimit(rows, 32, async (d) => {
    try {
      return await temporal.workflow.getHandle(deviceWorkflowId(d.id)).query(lifecycleStateQuery);
    } catch (err) {
      return (err as Error).message;
    }
  });
  let vsWorkflow = 0;
  let vsVersion = 0;
  let vsExpected = 0;
  let queryFailed = 0;
  rows.forEach((d, i) => {
    const s = states[i] as LifecycleState | string;
    if (typeof s === 'string') {
      queryFailed++;
      c.fail(`${d.id}: query "state" failed: ${s}`);
      return;
    }
    if (s.status !== d.status) {
      vsWorkflow++;
      c.fail(`${d.id}: Postgres ${d.status}, workflow ${s.status}`);
    }
    if (s.version !== d.status_version) {
      vsVersion++;
      c.fail(`${d.id}: Postgres status_version ${d.status_version}, workflow version ${s.version}`);
    }
    const want = r.expected.get(d.id);
    if (want && want.status !== d.status) {
      vsExpected++;
      c.fail(`${d.id}: Postgres ${d.status}, requested ${want.status}`);
    }
  });
  if (r.expected.size !== rows.length) c.fail(`the drive expected ${r.expected.size} devices, Postgres has ${rows.length}`);

  // The search attribute, read through visibility (eventually consistent: read again a few times).
  const pg = new Map(rows.map((d) => [d.id, d.status]));
  let vsSearch: string[] = [];
  let listed = 0;
  for (let i = 0; i < 20; i++) {
    vsSearch = [];
    listed = 0;
    for await (const w of temporal.workflow.list({ query: `WorkflowType = "deviceLifecycle" AND BatchId = "${r.batchId}" AND ExecutionStatus = "Running"` }) as AsyncIterable<WorkflowExecutionInfo>) {
      listed++;
      const id = w.workflowId.replace(/^device-/, '');
      const sa = w.typedSearchAttributes.get(SA.DeviceStatus);
      if (sa !== pg.get(id)) vsSearch.push(`${id}: Postgres ${pg.get(id)}, DeviceStatus ${sa}`);
    }
    if (vsSearch.length === 0 && listed === rows.length) break;
    await sleep(500);
  }
  for (const e of vsSearch) c.fail(e);
  if (listed !== rows.length) c.fail(`visibility lists ${listed} running lifecycle workflows for ${rows.length} devices`, Math.abs(listed - rows.length));
  return c.done(
    `${rows.length} devices: ${vsWorkflow} status and ${vsVersion} version mismatches with the workflow, ${vsSearch.length} with DeviceStatus, ${vsExpected} not the requested status, ${queryFailed} queries failed`,
  );
}

interface EventRow {
  device_id: string;
  version: number;
  from_status: string;
  to_status: string;
  reason: string | null;
}

/** Each device's history: exactly the changes asked for, versions 1..n unbroken, a chain from `new`. */
export async function historyConsistent(db: Db, r: WorkloadResult): Promise<Check> {
  const c = new CheckBuilder('status history: every change applied once');
  const devices: DeviceRow[] = await db('devices').where({ batch_id: r.batchId }).select('id', 'status', 'status_version');
  const events: EventRow[] = await db('device_status_events as e')
    .join('devices as d', 'd.id', 'e.device_id')
    .where('d.batch_id', r.batchId)
    .orderBy([{ column: 'e.device_id' }, { column: 'e.version' }])
    .select('e.device_id', 'e.version', 'e.from_status', 'e.to_status', 'e.reason');
  const byDevice = new Map<string, EventRow[]>();
  for (const e of events) {
    const list = byDevice.get(e.device_id) ?? [];
    list.push(e);
    byDevice.set(e.device_id, list);
  }
  let wrongCount = 0;
  let broken = 0;
  for (const d of devices) {
    const list = byDevice.get(d.id) ?? [];
    const want = r.expected.get(d.id)?.changes;
    if (want !== undefined && list.length !== want) {
      wrongCount++;
      c.fail(`${d.id}: ${list.length} status changes recorded, ${want} asked for (${list.map((e) => `${e.from_status}->${e.to_status}`).join(', ')})`);
    }
    let prev = 'new';
    let ok = list.length === d.status_version;
    list.forEach((e, i) => {
      if (e.version !== i + 1 || e.from_status !== prev || e.from_status === e.to_status) ok = false;
      prev = e.to_status;
    });
    if (prev !== d.status) ok = false;
    if (!ok) {
      broken++;
      c.fail(`${d.id}: history does not chain to its row (status ${d.status} v${d.status_version}; ${list.map((e) => `v${e.version} ${e.from_status}->${e.to_status}`).join(', ')})`);
    }
  }
  return c.done(`${events.length} history rows for ${devices.length} devices: ${wrongCount} devices with a wrong number of changes, ${broken} with a broken chain`);
}

interface BulkRow {
  id: string;
  target_status: string;
  state: string;
  requested: number;
  changed: number;
  unchanged: number;
  refused: { count: number };
}

/** Bulk tallies add up and match the history rows each operation wrote; each device moved once per target. */
export async function bulkApplied(db: Db, r: WorkloadResult, n: number): Promise<Check> {
  const c = new CheckBuilder('bulk operations applied once');
  const ops: BulkRow[] = await db('bulk_operations').where({ batch_id: r.batchId }).orderBy('created_at');
  const events: EventRow[] = await db('device_status_events as e')
    .join('devices as d', 'd.id', 'e.device_id')
    .where('d.batch_id', r.batchId)
    .andWhere('e.reason', 'like', 'bulk operation %')
    .select('e.device_id', 'e.to_status', 'e.reason');
  const perOp = new Map<string, number>();
  const perDeviceTarget = new Map<string, number>();
  for (const e of events) {
    const op = e.reason!.slice('bulk operation '.length);
    perOp.set(op, (perOp.get(op) ?? 0) + 1);
    const k = `${e.device_id} ${e.to_status}`;
    perDeviceTarget.set(k, (perDeviceTarget.get(k) ?? 0) + 1);
  }
  for (const id of r.bulkOperationIds) if (!ops.some((o) => o.id === id)) c.fail(`operation ${id} (answered to the client) has no row`);
  const changedByTarget = new Map<string, number>();
  for (const o of ops) {
    const sum = o.changed + o.unchanged + o.refused.count;
    if (o.state !== 'completed') c.fail(`operation ${o.id} (${o.target_status}) is still ${o.state}`);
    if (sum !== o.requested) c.fail(`operation ${o.id} (${o.target_status}): requested ${o.requested} != changed ${o.changed} + unchanged ${o.unchanged} + refused ${o.refused.count}`);
    if ((perOp.get(o.id) ?? 0) !== o.changed) c.fail(`operation ${o.id} (${o.target_status}) says changed ${o.changed}, the history holds ${perOp.get(o.id) ?? 0} of its changes`, Math.abs((perOp.get(o.id) ?? 0) - o.changed));
    changedByTarget.set(o.target_status, (changedByTarget.get(o.target_status) ?? 0) + o.changed);
  }
  for (const target of ['manufacturing', 'manufactured']) {
    const changed = changedByTarget.get(target) ?? 0;
    if (changed !== n) c.fail(`bulk ${target}: ${changed} devices changed in all, expected ${n}`, Math.abs(changed - n));
  }
  let twice = 0;
  for (const [k, v] of perDeviceTarget) if (v > 1) {
    twice++;
    c.fail(`${k}: moved ${v} times by bulk operations`);
  }
  const ext = [...perOp.keys()].filter((id) => !ops.some((o) => o.id === id));
  if (ext.length) c.fail(`history rows name ${ext.length} operations without a row: ${ext.slice(0, 3).join(', ')}`, ext.length);
  const line = ops.map((o) => `${o.target_status} ${o.requested}=${o.changed}+${o.unchanged}+${o.refused.count}`).join('; ');
  return c.done(`${ops.length} operations (${r.bulkOperationIds.length} answered to the client) [${line}]; ${events.length} bulk history rows; ${twice} device moves repeated`);
}

export interface TelemetryTally {
  series: number;
  sent: number;
  acked: number;
  failed: number;
  stored: number;
  lost: number;
  doubled: number;
  /** Rows of a device/property the fleet never published. */
  foreign: number;
}

/** Stored rows per device/property: what the fleet's devices counted (sent, acknowledged, failed). */
export async function telemetryTally(db: Db, fleet: Fleet | null): Promise<{ tally: TelemetryTally; check: Check }> {
  const c = new CheckBuilder('telemetry: every acknowledged value stored exactly once');
  const t: TelemetryTally = { series: 0, sent: 0, acked: 0, failed: 0, stored: 0, lost: 0, doubled: 0, foreign: 0 };
  const rows: { device_id: string; node: string; property: string; n: string }[] = (
    await db.raw('SELECT device_id, node, property, count(*) AS n FROM telemetry GROUP BY 1, 2, 3')
  ).rows;
  const stored = new Map(rows.map((x) => [`${x.device_id} ${x.node}/${x.property}`, Number(x.n)]));
  for (const v of stored.values()) t.stored += v;
  if (!fleet) {
    c.fail('the fleet never started (devices.csv was never downloaded)');
    return { tally: t, check: c.done('no fleet') };
  }
  const seen = new Set<string>();
  for (const d of fleet.devices) {
    const k = d.counters();
    for (const prop of Object.keys(k.sent)) {
      const key = `${d.deviceId} ${prop}`;
      seen.add(key);
      const sent = k.sent[prop]!;
      const acked = k.published[prop]!;
      const failed = k.failed[prop]!;
      const have = stored.get(key) ?? 0;
      t.series++;
      t.sent += sent;
      t.acked += acked;
      t.failed += failed;
      // Acknowledged values must all be there; a value sent but never acknowledged may or may not
      // have reached the broker. More rows than values sent can only be a value stored twice.
      if (have < acked) {
        t.lost += acked - have;
        c.fail(`${key}: ${acked} acknowledged, ${have} stored (${acked - have} lost)`, acked - have);
      }
      if (have > sent) {
        t.doubled += have - sent;
        c.fail(`${key}: ${sent} sent, ${have} stored (${have - sent} stored twice)`, have - sent);
      } else if (sent === acked && have > acked) {
        t.doubled += have - acked;
        c.fail(`${key}: ${acked} acknowledged, ${have} stored`, have - acked);
      }
    }
  }
  for (const [key, v] of stored) if (!seen.has(key)) {
    t.foreign += v;
    c.fail(`${key}: ${v} rows of a series the fleet never published`, v);
  }
  const ambiguous = t.failed > 0 ? ` (${t.failed} unacknowledged: stored counts between acknowledged and sent are accepted)` : '';
  return {
    tally: t,
    check: c.done(`${t.series} series: ${t.sent} sent, ${t.acked} acknowledged, ${t.failed} failed, ${t.stored} stored; ${t.lost} lost, ${t.doubled} doubled, ${t.foreign} foreign${ambiguous}`),
  };
}
