// One large batch must not delay others: its fan-out activities (creating 5,000 devices,
// starting their workflows) run on the fan-out task queue with few slots, so a new batch's
// row (createBatchRecord, on the main queue) is written at once and its POST answers 201,
// not the 202 that means "no worker wrote it within 15 s".
import type { Batch } from '../domain/model';
import { startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.stop(), 120_000);

it('answers 201 for small batches created right after a 5,000-device batch', async () => {
  const large = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'large', count: 5000 } });
  expect(large.status).toBe(201);
  const big = (await large.json()) as Batch;

  const smalls: { status: number; batch: Batch }[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: `small ${i}`, count: 5 } });
    smalls.push({ status: r.status, batch: (await r.json()) as Batch });
  }
  // The large batch is still being built: the small ones did not wait for it.
  expect(smalls.map((x) => x.status)).toEqual([201, 201, 201, 201]);
  // The 201 means the row exists: readable at once, while the large batch is still being built.
  for (const { batch } of smalls) expect((await s.api(`/api/v1/batches/${batch.id}`)).status).toBe(200);
  expect(((await (await s.api(`/api/v1/batches/${big.id}`)).json()) as Batch).count).toBe(5000);
}, 300_000);
