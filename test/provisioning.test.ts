// Stage 1 end to end: a batch is created through its workflow, every device gets credentials,
// a lifecycle workflow and a QR code, and the manufacturer's downloads hold each device once.
import { readZip } from '../files/test-support';
import { sha256Hex } from '../domain/credentials';
import { parseQrPayload } from '../domain/qr-payload';
import type { Batch, Device } from '../domain/model';
import { decodeQrPng, parseCsv } from './support/read';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  // The product's wait (15 s): on a busy machine the worker may take seconds to write the batch.
  s = await startStack({ acceptWaitMs: 15_000 });
});
afterAll(() => s.stop());

async function createBatch(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Batch> {
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, ...body }, headers });
  expect(r.status).toBe(201);
  return (await r.json()) as Batch;
}

async function readyBatch(id: string): Promise<Batch & { devicesByStatus: Record<string, number> }> {
  return eventually(async () => {
    const b = (await (await s.api(`/api/v1/batches/${id}`)).json()) as Batch & { devicesByStatus: Record<string, number> };
    return b.provisioning.status === 'ready' ? b : null;
  });
}

const lifecycleWorkflows = (batchId: string) => s.temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${batchId}"`);

describe('a batch of 120 devices', () => {
  let batch: Batch;
  let csv: Record<string, string>[];

  beforeAll(async () => {
    batch = await createBatch({ name: 'EV chargers, lot 7', count: 120, info: 'for "Acme", line 2', color: '#1e90ff', model: 'evc-22' });
    await readyBatch(batch.id);
    csv = parseCsv(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text());
  });

  it('answers 201 with the batch as the contract shapes it, the row already written', async () => {
    expect(batch).toMatchObject({ name: 'EV chargers, lot 7', count: 120, color: '#1E90FF', info: 'for "Acme", line 2', model: 'evc-22' });
    expect(batch.id).toMatch(/^[0-9A-Z]{16}$/);
    expect(typeof batch.createdAt).toBe('string');
  });

  it('ends with every device new, counted by status, and one lifecycle workflow each', async () => {
    const b = await readyBatch(batch.id);
    expect(b.devicesByStatus).toEqual({ new: 120, manufacturing: 0, manufactured: 0, free: 0, pairing: 0, paired: 0 });
    expect(b.provisioning).toMatchObject({ devicesCreated: 120, workflowsStarted: 120 });
    expect(b.provisioning.readyAt).not.toBeNull();
    expect((await lifecycleWorkflows(batch.id)).count).toBe(120);
    const running = await s.temporal.workflow.count(`WorkflowType = "deviceLifecycle" AND BatchId = "${batch.id}" AND ExecutionStatus = "Running" AND DeviceStatus = "new"`);
    expect(running.count).toBe(120);
  });

  it('lists the batch', async () => {
    const page = (await (await s.api('/api/v1/batches?limit=1000')).json()) as { items: Batch[] };
    expect(page.items.map((b) => b.id)).toContain(batch.id);
  });

  it('gives a CSV with every device exactly once and the contract columns', async () => {
    expect(csv).toHaveLength(120);
    expect(new Set(csv.map((r) => r.device_id)).size).toBe(120);
    for (const col of ['device_id', 'batch', 'status', 'secret', 'qr_file', 'info']) expect(Object.keys(csv[0]!)).toContain(col);
    const ids = (await s.db('devices').where({ batch_id: batch.id }).pluck('id')) as string[];
    expect(new Set(csv.map((r) => r.device_id))).toEqual(new Set(ids));
    expect(csv[0]).toMatchObject({ batch: 'EV chargers, lot 7', status: 'new', info: 'for "Acme", line 2', model: 'evc-22', color: '#1E90FF' });
    expect(csv[0]!.qr_file).toBe(`qr/${csv[0]!.device_id}.png`);
  });

  it('shows each secret in the CSV while Postgres keeps only its hash', async () => {
    const rows = await s.db('devices').where({ batch_id: batch.id }).select('id', 'secret_hash', 'pairing_code_hash');
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of csv) {
      expect(sha256Hex(r.secret!)).toBe(byId.get(r.device_id)!.secret_hash);
      expect(sha256Hex(r.pairing_code!)).toBe(byId.get(r.device_id)!.pairing_code_hash);
    }
    const dump = JSON.stringify(await s.db('devices').where({ batch_id: batch.id }));
    expect(dump).not.toContain(csv[0]!.secret);
  });

  it('gives a bundle with the CSV and one decodable QR per device, each exactly once', async () => {
    const r = await s.api(`/api/v1/batches/${batch.id}/bundle.zip`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/zip');
    const entries = await readZip(Buffer.from(await r.arrayBuffer()));
    const names = entries.map((e) => e.name);
    expect(names.filter((n) => n === 'devices.csv')).toHaveLength(1);
    const qrs = names.filter((n) => n.startsWith('qr/'));
    expect(qrs).toHaveLength(120);
    expect(new Set(qrs)).toEqual(new Set(csv.map((row) => row.qr_file)));
    expect(parseCsv(entries.find((e) => e.name === 'devices.csv')!.data.toString('utf8'))).toEqual(csv);
    for (const e of entries.filter((x) => x.name.startsWith('qr/')).slice(0, 20)) {
      const payload = decodeQrPng(e.data)!;
      const row = csv.find((c) => c.qr_file === e.name)!;
      expect(parseQrPayload(payload)).toEqual({ deviceId: row.device_id, pairingCode: row.pairing_code });
    }
  });

  it('serves one device and its QR code as PNG and SVG', async () => {
    const id = csv[5]!.device_id!;
    const d = (await (await s.api(`/api/v1/devices/${id}`)).json()) as Device;
    expect(d).toMatchObject({ id, status: 'new', batchId: batch.id, online: false, lastSeenAt: null, firmwareVersion: null, updatePolicy: { mode: 'manual' } });
    const png = await s.api(`/api/v1/devices/${id}/qr.png`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(parseQrPayload(decodeQrPng(Buffer.from(await png.arrayBuffer()))!)!.deviceId).toBe(id);
    const svg = await s.api(`/api/v1/devices/${id}/qr.svg`);
    expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(await svg.text()).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect((await s.api('/api/v1/devices/ABCDEFGHJKMN/qr.png')).status).toBe(404);
  });

  it('pages through the devices with keyset cursors, each once, with filters', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/v1/devices?batchId=${batch.id}&status=new&limit=50${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await (await s.api(q)).json()) as { items: Device[]; nextCursor: string | null };
      seen.push(...page.items.map((d) => d.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect([...seen].sort()).toEqual(seen);
    const none = (await (await s.api(`/api/v1/devices?batchId=${batch.id}&status=paired`)).json()) as { items: Device[] };
    expect(none.items).toHaveLength(0);
    const offline = (await (await s.api(`/api/v1/devices?batchId=${batch.id}&online=false&limit=1000`)).json()) as { items: Device[] };
    expect(offline.items).toHaveLength(120);
  });

  it('lets a manufacturer download it but not without a token', async () => {
    const m = await s.token('manufacturer');
    expect((await s.api(`/api/v1/batches/${batch.id}/devices.csv`, { token: m })).status).toBe(200);
    expect((await s.api(`/api/v1/batches/${batch.id}/devices.csv`, { token: null })).status).toBe(401);
  });
});

describe('batch creation', () => {
  it('returns the same batch for a retried POST with the same Idempotency-Key', async () => {
    const a = await createBatch({ name: 'idem', count: 3 }, { 'idempotency-key': 'order-4711' });
    const b = await createBatch({ name: 'idem', count: 3 }, { 'idempotency-key': 'order-4711' });
    expect(b.id).toBe(a.id);
    await readyBatch(a.id);
    const c = await createBatch({ name: 'idem', count: 3 }, { 'idempotency-key': 'order-4711' });
    expect(c.id).toBe(a.id);
    expect(await s.db('devices').where({ batch_id: a.id }).count<{ count: string }[]>('* as count')).toEqual([{ count: '3' }]);
  });

  it('answers 202 when no worker writes the batch in time, 409 for its downloads, and builds it once a worker runs', async () => {
    await s.stopWorker();
    let id: string;
    try {
      const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'waiting', count: 5 } });
      expect(r.status).toBe(202);
      id = ((await r.json()) as Batch).id;
      expect(r.headers.get('location')).toBe(`/api/v1/batches/${id}`);
      const csv = await s.api(`/api/v1/batches/${id}/devices.csv`);
      expect([404, 409]).toContain(csv.status);
    } finally {
      await s.startWorker();
    }
    const b = await readyBatch(id);
    expect(b.devicesByStatus.new).toBe(5);
    expect((await s.api(`/api/v1/batches/${id}/devices.csv`)).status).toBe(200);
  });
});
