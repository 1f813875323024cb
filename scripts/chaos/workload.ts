// What the chaos run asks of the product while processes die under it: one batch (created with an
// Idempotency-Key, so a retried POST cannot make a second one), two bulk status changes by the
// manufacturer (manufacturing, then manufactured), per-device changes by an admin (some devices
// released to `free`, some sent back for rework and finished again), and the fleet simulator
// publishing telemetry with the credentials of the batch's devices.csv.
import { randomBytes } from 'node:crypto';
import { Fleet } from '../../firmware/fleet';
import { provisioningRows } from '../../firmware/provisioning';
import type { Rng } from '../../firmware/models/rng';
import type { DeviceStatus } from '../../domain/device-status';
import type { Batch } from '../../domain/model';
import { sleep } from '../bench/support';
import { ApiClient, errorCode, type ApiAnswer } from './api-client';

export interface WorkloadOptions {
  devices: number;
  /** Fleet-wide value messages per second. */
  rate: number;
  mqttUrl: string;
  seed: string;
  rng: Rng;
  /** Devices moved one by one (each of the two per-device scenarios). */
  perDevice: number;
  setPhase(phase: string): void;
  log(line: string): void;
  /** No bulk status workflow still runs (an orphan of a retried POST included). */
  bulkIdle(batchId: string): Promise<boolean>;
}

export interface WorkloadResult {
  batchId: string;
  /** Every bulk operation this client was answered with (a retried POST may have left others). */
  bulkOperationIds: string[];
  /** The status each device should end in, and how many status changes it should have had. */
  expected: Map<string, { status: DeviceStatus; changes: number }>;
  fleet: Fleet | null;
  csvRows: number;
  notes: string[];
}

interface BulkOp {
  id: string;
  state: 'running' | 'completed';
  requested: number;
  changed: number;
  unchanged: number;
  refusedCount: number;
}

const MODEL = 'thermostat';

async function expectOk<T>(what: string, p: Promise<ApiAnswer<T>>, ok: number[] = [200]): Promise<ApiAnswer<T>> {
  const a = await p;
  if (!ok.includes(a.status)) throw new Error(`${what}: HTTP ${a.status} ${JSON.stringify(a.body).slice(0, 400)}`);
  return a;
}

export class Workload {
  readonly result: WorkloadResult;
  private fleetStarted: Promise<void> | null = null;

  constructor(
    private readonly admin: ApiClient,
    private readonly o: WorkloadOptions,
  ) {
    this.result = { batchId: '', bulkOperationIds: [], expected: new Map(), fleet: null, csvRows: 0, notes: [] };
  }

  async run(): Promise<WorkloadResult> {
    const o = this.o;
    o.setPhase('token creation');
    // A company, a manufacturer in it (signed in with a password), and that manufacturer's API token.
    const company = await expectOk('create the company', this.admin.request<{ id: string }>('POST', '/api/v1/companies', { json: { name: `chaos ${o.seed}` } }), [201]);
    const email = `chaos-${o.seed}-${randomBytes(4).toString('hex')}@chaos.invalid`;
    const password = randomBytes(18).toString('base64url');
    const user = await expectOk('create the manufacturer', this.admin.request<{ id: string }>('POST', '/api/v1/users', { json: { email, password } }), [201]);
    await expectOk('make them a manufacturer', this.admin.request('POST', `/api/v1/companies/${company.body.id}/participations`, { json: { userId: user.body.id, role: 'manufacturer' } }), [201]);
    const session = await expectOk('sign in', this.admin.withToken('').request<{ token: string }>('POST', '/api/v1/sessions', { json: { email, password } }), [201]);
    const tok = await expectOk('create a manufacturer token', this.admin.withToken(session.body.token).request<{ token: string }>('POST', '/api/v1/tokens', { json: { name: 'chaos manufacturer', companyId: company.body.id } }), [201]);
    const manufacturer = this.admin.withToken(tok.body.token);

    o.setPhase('batch creation');
    const key = `chaos-${o.seed}-${randomBytes(6).toString('hex')}`;
    const created = await expectOk(
      'create the batch',
      this.admin.request<Batch>('POST', '/api/v1/batches', { json: { companyId: company.body.id, name: `chaos ${o.seed}`, count: o.devices, model: MODEL }, headers: { 'idempotency-key': key } }),
      [201, 202],
    );
    const batchId = created.body.id;
    this.result.batchId = batchId;
    o.log(`  batch ${batchId}: ${created.status} (${o.devices} devices)`);

    // The fleet starts as soon as devices.csv can be downloaded, and runs to the end.
    this.fleetStarted = this.startFleetWhenExportable(manufacturer, batchId);
    this.fleetStarted.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile

    // Straight after the 201, as a manufacturer's script would: a 409 "still being provisioned"
    // (today's behaviour) is waited out and sent again.
    o.setPhase('bulk manufacturing');
    const first = await this.bulk(manufacturer, batchId, 'manufacturing');
    o.setPhase('bulk manufactured');
    const second = await this.bulk(manufacturer, batchId, 'manufactured');
    o.log(`  bulk manufacturing: ${fmtOp(first)}; bulk manufactured: ${fmtOp(second)}`);

    // A POST whose answer was lost (the api died) was sent again: the first one may have started
    // an operation this client never heard of. Let it finish before the admin's own moves.
    o.setPhase('waiting for bulk operations');
    await this.waitBulkIdle(batchId);

    await this.fleetStarted;
    const ids = await this.deviceIds(manufacturer, batchId);
    for (const id of ids) this.result.expected.set(id, { status: 'manufactured', changes: 2 });
    const shuffled = shuffle(ids, o.rng);
    const toFree = shuffled.slice(0, o.perDevice);
    const rework = shuffled.slice(o.perDevice, 2 * o.perDevice);

    o.setPhase('per-device changes');
    await mapLimit([...toFree.map((id) => ['free', id] as const), ...rework.map((id) => ['rework', id] as const)], 8, async ([what, id]) => {
      if (what === 'free') {
        await this.setStatus(id, 'free');
        this.result.expected.set(id, { status: 'free', changes: 3 });
      } else {
        // Freed meanwhile by its first connection (the fleet is connected): no rework for it.
        const back = await this.admin.request('POST', `/api/v1/devices/${id}/status`, { json: { status: 'manufacturing', reason: 'chaos' } });
        if (back.status === 409 && /from 'free'/.test(JSON.stringify(back.body))) {
          this.result.expected.set(id, { status: 'free', changes: 3 });
          return;
        }
        await expectOk(`device ${id} -> manufacturing`, Promise.resolve(back));
        await this.setStatus(id, 'manufactured');
        this.result.expected.set(id, { status: 'manufactured', changes: 4 });
      }
    });
    o.log(`  per-device: ${toFree.length} released to free, ${rework.length} reworked (manufacturing, manufactured)`);
    o.setPhase('telemetry');
    return this.result;
  }

  private async bulk(c: ApiClient, batchId: string, status: DeviceStatus): Promise<BulkOp> {
    let a: ApiAnswer<BulkOp>;
    for (let n = 0; ; n++) {
      a = await c.request<BulkOp>('POST', `/api/v1/batches/${batchId}/status`, { json: { status } });
      if (a.status === 409 && errorCode(a) === 'batch_provisioning') {
        if (n === 0) {
          this.result.notes.push(`POST /batches/{id}/status (${status}) answered 409 batch_provisioning right after the batch was created; retried until accepted`);
          this.o.setPhase(`provisioning (bulk ${status} answered 409, retrying)`);
        }
        await sleep(500);
        continue;
      }
      break;
    }
    if (a.status !== 200 && a.status !== 202) throw new Error(`bulk ${status}: HTTP ${a.status} ${JSON.stringify(a.body).slice(0, 400)}`);
    const id = a.body.id;
    this.o.setPhase(`bulk ${status} (operation ${id}, answered ${a.status})`);
    this.result.bulkOperationIds.push(id);
    let op = a.body;
    // A slow machine is not a failure; an operation that stops moving is (3 minutes without progress).
    let progress = -1;
    let movedAt = Date.now();
    while (op.state !== 'completed') {
      await sleep(1_000);
      const r = await c.request<BulkOp>('GET', `/api/v1/bulk-operations/${id}`);
      if (r.status !== 404) op = (await expectOk(`bulk operation ${id}`, Promise.resolve(r))).body; // 404: its row is not written yet
      const b = await expectOk(`batch ${batchId}`, c.request<{ devicesByStatus: Record<string, number> }>('GET', `/api/v1/batches/${batchId}`));
      const now = (b.body.devicesByStatus[status] ?? 0) + op.changed + op.unchanged + op.refusedCount;
      if (now !== progress) {
        progress = now;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > 180_000) {
        throw new Error(`bulk operation ${id} (${status}) made no progress for 3 minutes: ${fmtOp(op)}, ${b.body.devicesByStatus[status] ?? 0} devices ${status}`);
      }
    }
    return op;
  }

  private async waitBulkIdle(batchId: string): Promise<void> {
    let quiet = 0;
    const until = Date.now() + 600_000;
    while (quiet < 2) {
      quiet = (await this.o.bulkIdle(batchId)) ? quiet + 1 : 0;
      if (Date.now() > until) throw new Error('bulk status workflows still running after 10 minutes');
      await sleep(1_000);
    }
  }

  /** One device's move by the admin: sent again until answered (same target: harmless). */
  private async setStatus(id: string, status: DeviceStatus): Promise<void> {
    await expectOk(`device ${id} -> ${status}`, this.admin.request('POST', `/api/v1/devices/${id}/status`, { json: { status, reason: 'chaos' } }));
  }

  private async deviceIds(c: ApiClient, batchId: string): Promise<string[]> {
    const fleet = this.result.fleet;
    if (fleet) return fleet.devices.map((d) => d.deviceId);
    const csv = await this.csv(c, batchId);
    return provisioningRows(csv).map((p) => p.deviceId);
  }

  private async csv(c: ApiClient, batchId: string): Promise<string> {
    for (;;) {
      const a = await c.request<string>('GET', `/api/v1/batches/${batchId}/devices.csv`);
      if (a.status === 200) return a.body;
      if (a.status === 409 || a.status === 404) {
        await sleep(500);
        continue;
      }
      throw new Error(`devices.csv: HTTP ${a.status} ${String(a.body).slice(0, 300)}`);
    }
  }

  private async startFleetWhenExportable(c: ApiClient, batchId: string): Promise<void> {
    const csv = await this.csv(c, batchId);
    const rows = provisioningRows(csv, { broker: this.o.mqttUrl });
    this.result.csvRows = rows.length;
    const fleet = new Fleet({
      devices: rows.map((r) => ({ deviceId: r.deviceId, secret: r.secret, mqttUrl: r.mqttUrl, model: r.model })),
      targetRate: this.o.rate,
      qos: 1,
      seed: this.o.seed,
      connectRate: 200,
    });
    this.result.fleet = fleet;
    fleet.start();
    this.o.log(`  fleet: ${rows.length} devices from devices.csv, ${this.o.rate} values/s, QoS 1`);
  }
}

function fmtOp(op: BulkOp): string {
  return `requested ${op.requested}, changed ${op.changed}, unchanged ${op.unchanged}, refused ${op.refusedCount}`;
}

function shuffle<T>(xs: readonly T[], rng: Rng): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
