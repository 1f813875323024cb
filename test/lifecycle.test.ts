// The device lifecycle through the API: each device's workflow validates every transition,
// records accepted ones in Postgres and in the DeviceStatus search attribute, refuses the rest.
import type { Batch, Device } from '../domain/model';
import { deviceWorkflowId, lifecycleStateQuery } from '../domain/messages';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
let manufacturer: string;
beforeAll(async () => {
  s = await startStack();
  manufacturer = await s.token('manufacturer');
});
afterAll(() => s.stop());

async function readyBatch(count: number): Promise<{ batch: Batch; ids: string[] }> {
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'lifecycle', count } });
  const batch = (await r.json()) as Batch;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready');
  const ids = (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as string[];
  return { batch, ids };
}

const setStatus = (id: string, status: string, token?: string) => s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status }, token });
const dbStatus = async (id: string) => (await s.db('devices').where({ id }).first('status', 'status_version')) as { status: string; status_version: number };

describe('one device', () => {
  let ids: string[];
  beforeAll(async () => {
    ({ ids } = await readyBatch(4));
  });

  it('goes new -> manufacturing -> manufactured by the manufacturer, then free by an admin', async () => {
    const id = ids[0]!;
    let r = await setStatus(id, 'manufacturing', manufacturer);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ from: 'new', to: 'manufacturing', changed: true, device: { id, status: 'manufacturing' } });
    r = await setStatus(id, 'manufactured', manufacturer);
    expect(r.status).toBe(200);
    r = await setStatus(id, 'free', manufacturer);
    expect(r.status).toBe(403);
    expect(await dbStatus(id)).toEqual({ status: 'manufactured', status_version: 2 });
    r = await setStatus(id, 'free');
    expect(r.status).toBe(200);
    expect(await dbStatus(id)).toEqual({ status: 'free', status_version: 3 });

    const history = await s.db('device_status_events').where({ device_id: id }).orderBy('version').select('from_status', 'to_status', 'actor');
    expect(history).toEqual([
      { from_status: 'new', to_status: 'manufacturing', actor: 'manufacturer' },
      { from_status: 'manufacturing', to_status: 'manufactured', actor: 'manufacturer' },
      { from_status: 'manufactured', to_status: 'free', actor: 'admin' },
    ]);
    const state = await s.temporal.workflow.getHandle(deviceWorkflowId(id)).query(lifecycleStateQuery);
    expect(state).toEqual({ status: 'free', blocked: false, version: 3 });
    await eventually(async () => (await s.temporal.workflow.count(`WorkflowId = "${deviceWorkflowId(id)}" AND DeviceStatus = "free"`)).count === 1);
  });

  it('refuses an illegal transition with 409 and changes nothing', async () => {
    const id = ids[1]!;
    const r = await setStatus(id, 'paired');
    expect(r.status).toBe(409);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('illegal_transition');
    expect(body.error.message).toContain("cannot go from 'new' to 'paired'");
    expect(await dbStatus(id)).toEqual({ status: 'new', status_version: 0 });
    expect(await s.db('device_status_events').where({ device_id: id })).toHaveLength(0);
    expect(await s.temporal.workflow.getHandle(deviceWorkflowId(id)).query(lifecycleStateQuery)).toMatchObject({ status: 'new', version: 0 });
    // the pairing handshake belongs to the platform, even for an admin
    await setStatus(id, 'manufacturing');
    await setStatus(id, 'manufactured');
    await setStatus(id, 'free');
    const pairing = await setStatus(id, 'pairing');
    expect(pairing.status).toBe(403);
    expect(await dbStatus(id)).toMatchObject({ status: 'free' });
  });

  it('answers 200 unchanged when the device already has the status', async () => {
    const id = ids[2]!;
    expect((await setStatus(id, 'manufacturing', manufacturer)).status).toBe(200);
    const again = await setStatus(id, 'manufacturing', manufacturer);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ changed: false });
    expect(await dbStatus(id)).toEqual({ status: 'manufacturing', status_version: 1 });
  });

  it('keeps Postgres in step with the workflow under concurrent requests', async () => {
    const id = ids[3]!;
    const results = await Promise.all([setStatus(id, 'manufacturing'), setStatus(id, 'manufacturing'), setStatus(id, 'manufactured'), setStatus(id, 'manufacturing')]);
    const codes = results.map((r) => r.status);
    expect(codes.every((c) => c === 200 || c === 409)).toBe(true);
    const state = await s.temporal.workflow.getHandle(deviceWorkflowId(id)).query(lifecycleStateQuery);
    expect(await dbStatus(id)).toEqual({ status: state.status, status_version: state.version });
    const history = await s.db('device_status_events').where({ device_id: id }).orderBy('version');
    expect(history.map((h) => h.version)).toEqual(Array.from({ length: state.version }, (_, i) => i + 1));
  });

  it('rejects bad status bodies', async () => {
    const id = ids[0]!;
    expect((await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status: 'broken' } })).status).toBe(400);
    expect((await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status: 'free', extra: 1 } })).status).toBe(400);
    expect((await s.api(`/api/v1/devices/ABCDEFGHJKMN/status`, { method: 'POST', json: { status: 'free' } })).status).toBe(404);
  });
});

describe('a whole batch at once', () => {
  it('moves every device of a batch, and reports devices that refused', async () => {
    const { batch, ids } = await readyBatch(60);
    await setStatus(ids[0]!, 'manufacturing', manufacturer);
    await setStatus(ids[0]!, 'manufactured', manufacturer);

    let r = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing' }, token: manufacturer });
    expect(r.status).toBe(200);
    let op = (await r.json()) as { state: string; requested: number; changed: number; unchanged: number; refusedCount: number; refused: { deviceId: string; code: string }[] };
    expect(op).toMatchObject({ state: 'completed', requested: 60, changed: 59, unchanged: 0, refusedCount: 1 });
    // manufactured -> manufacturing is rework, an admin's call
    expect(op.refused).toEqual([expect.objectContaining({ deviceId: ids[0], code: 'forbidden_transition' })]);

    r = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufactured', deviceIds: [...ids.slice(1, 11), 'ABCDEFGHJKMN'] }, token: manufacturer });
    op = (await r.json()) as typeof op;
    expect(op).toMatchObject({ state: 'completed', requested: 11, changed: 10, refusedCount: 1 });
    expect(op.refused[0]).toMatchObject({ deviceId: 'ABCDEFGHJKMN', code: 'not_in_batch' });

    const counts = ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as { devicesByStatus: Record<string, number> }).devicesByStatus;
    expect(counts).toMatchObject({ manufacturing: 49, manufactured: 11 });
    const location = r.headers.get('location')!;
    expect((await (await s.api(location)).json()) as object).toMatchObject({ state: 'completed', changed: 10 });
    await eventually(async () => (await s.temporal.workflow.count(`BatchId = "${batch.id}" AND DeviceStatus = "manufactured"`)).count === 11);
  });

  it('answers a retried bulk change with the same Idempotency-Key from the first operation, applied once', async () => {
    const { batch, ids } = await readyBatch(5);
    const post = (key: string) =>
      s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing' }, headers: { 'idempotency-key': key } });
    const first = await post('pallet-7');
    expect(first.status).toBe(200);
    // The device is reworked in between: a second run of the same change would move it again.
    expect((await setStatus(ids[0]!, 'manufactured')).status).toBe(200);
    const retry = await post('pallet-7');
    expect(retry.status).toBe(200);
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    expect(((await retry.json()) as { changed: number }).changed).toBe(5);
    expect(await dbStatus(ids[0]!)).toMatchObject({ status: 'manufactured' });
    expect(await s.db('bulk_operations').where({ batch_id: batch.id }).count<{ count: string }[]>('* as count')).toEqual([{ count: '1' }]);
    // Another key is another operation.
    expect((await post('pallet-8')).headers.get('location')).not.toBe(first.headers.get('location'));
  });

  it('refuses a manufacturer bulk move outside the provisioning stage, and bad bodies', async () => {
    const { batch, ids } = await readyBatch(2);
    expect((await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'free' }, token: manufacturer })).status).toBe(403);
    expect((await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing', deviceIds: [ids[0], ids[0]] } })).status).toBe(400);
    expect((await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing', deviceIds: [] } })).status).toBe(400);
    expect((await s.api(`/api/v1/batches/0000000000000000/status`, { method: 'POST', json: { status: 'manufacturing' } })).status).toBe(404);
    const devices = (await (await s.api(`/api/v1/devices?batchId=${batch.id}`)).json()) as { items: Device[] };
    expect(devices.items.every((d) => d.status === 'new')).toBe(true);
  });
});
