// A bulk status change sent right after a batch's 201, while its devices are still being
// created, is accepted and applied once they exist: a manufacturer's script need not poll.
import type { Batch } from '../domain/model';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack({ bulkWaitMs: 1_000 });
});
afterAll(() => s.stop(), 120_000);

it('accepts a whole-batch change while a 1,000-device batch is provisioned, and applies it to every device once', async () => {
  const manufacturer = await s.token('manufacturer');
  const created = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'early bulk', count: 1000 } });
  expect(created.status).toBe(201);
  const batch = (await created.json()) as Batch;
  expect(batch.provisioning.status).toBe('provisioning');

  const r = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing' }, token: manufacturer });
  expect([200, 202]).toContain(r.status);
  const op = (await r.json()) as { id: string; requested: number };
  expect(op.requested).toBe(1000);
  const location = r.headers.get('location')!;
  // The operation can be polled from the start.
  expect((await s.api(location, { token: manufacturer })).status).toBe(200);

  const done = await eventually(
    async () => {
      const o = (await (await s.api(location, { token: manufacturer })).json()) as { state: string; changed: number; unchanged: number; refusedCount: number };
      return o.state === 'completed' ? o : null;
    },
    540_000,
    1_000,
  );
  expect(done).toMatchObject({ changed: 1000, unchanged: 0, refusedCount: 0 });
  const counts = ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as { devicesByStatus: Record<string, number> }).devicesByStatus;
  expect(counts).toMatchObject({ new: 0, manufacturing: 1000 });
  // Exactly once: one recorded change per device.
  const perDevice = await s.db('device_status_events as e')
    .join('devices as d', 'd.id', 'e.device_id')
    .where('d.batch_id', batch.id)
    .select('e.device_id')
    .count('* as n')
    .groupBy('e.device_id');
  expect(perDevice).toHaveLength(1000);
  expect(perDevice.every((row) => Number(row.n) === 1)).toBe(true);
}, 600_000);
