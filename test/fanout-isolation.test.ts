// One large batch must not delay others: its fan-out activities (creating 5,000 devices,
// starting their workflows) run on the fan-out task queue with few slots, so a new batch's row
// (createBatchRecord, on the main queue) is written at once and the small batch is built while
// the large one still is. Not asserted: that its POST answers 201 rather than 202 ("accepted, no
// worker wrote it within 15 s"): on a machine saturated by other jobs that is a matter of speed.
import type { Batch } from '../domain/model';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.stop(), 120_000);

it('builds small batches created right after a 5,000-device batch while that one is still being built', async () => {
  const large = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'large', count: 5000 } });
  expect(large.status).toBe(201);
  const big = (await large.json()) as Batch;

  const smalls: { status: number; batch: Batch }[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: `small ${i}`, count: 5 } });
    smalls.push({ status: r.status, batch: (await r.json()) as Batch });
  }
  for (const { status } of smalls) expect([201, 202]).toContain(status);
  // Each small batch becomes ready (its devices and workflows exist) while the large one is
  // still being provisioned: none waited behind the large batch's fan-out.
  const read = async (id: string) => ((await (await s.api(`/api/v1/batches/${id}`)).json()) as Batch).provisioning;
  for (const { batch } of smalls) await eventually(async () => (await read(batch.id)).status === 'ready', 120_000, 100);
  const largeNow = await read(big.id);
  expect(largeNow.status).toBe('provisioning');
  expect(largeNow.workflowsStarted).toBeLessThan(5000);
}, 300_000);
