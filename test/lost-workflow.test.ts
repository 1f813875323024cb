// A device workflow lost to an operator's `terminate` is re-created from Postgres (the system of
// record) by the next command for that device, instead of the device failing forever.
import type { Batch } from '../domain/model';
import { deviceTaskQueue, deviceWorkflowId, lifecycleStateQuery } from '../domain/messages';
import { SA } from '../domain/search-attributes';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.stop());

const setStatus = (id: string, status: string) => s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status } });

it('re-creates a terminated device workflow from its Postgres row on the next status change', async () => {
  const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'lost', count: 2, model: 'evc-22' } })).json()) as Batch;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready', 60_000);
  const [id, other] = (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as string[];
  expect((await setStatus(id!, 'manufacturing')).status).toBe(200);

  const handle = s.temporal.workflow.getHandle(deviceWorkflowId(id!));
  await handle.terminate('operator cleaning up');
  expect((await handle.describe()).status.name).toBe('TERMINATED');

  // The same status again: answered from the re-created workflow, which starts where Postgres is.
  let r = await setStatus(id!, 'manufacturing');
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ from: 'manufacturing', to: 'manufacturing', changed: false });

  await s.temporal.workflow.getHandle(deviceWorkflowId(id!)).terminate('again');
  r = await setStatus(id!, 'manufactured');
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ from: 'manufacturing', to: 'manufactured', changed: true, device: { status: 'manufactured' } });

  const revived = s.temporal.workflow.getHandle(deviceWorkflowId(id!));
  const d = await revived.describe();
  expect(d.status.name).toBe('RUNNING');
  expect(d.taskQueue).toBe(deviceTaskQueue(s.taskQueue));
  expect(d.typedSearchAttributes.get(SA.DeviceStatus)).toBe('manufactured');
  expect(d.typedSearchAttributes.get(SA.BatchId)).toBe(batch.id);
  expect(d.typedSearchAttributes.get(SA.DeviceModel)).toBe('evc-22');
  expect(await revived.query(lifecycleStateQuery)).toEqual({ status: 'manufactured', blocked: false, version: 2 });
  expect(await s.db('devices').where({ id }).first('status', 'status_version')).toEqual({ status: 'manufactured', status_version: 2 });
  expect(await s.db('device_status_events').where({ device_id: id }).orderBy('version').pluck('to_status')).toEqual(['manufacturing', 'manufactured']);

  // A bulk change reaches a lost device too.
  await s.temporal.workflow.getHandle(deviceWorkflowId(other!)).terminate('lost');
  const bulk = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing', deviceIds: [other] } });
  expect(bulk.status).toBe(200);
  expect(await bulk.json()).toMatchObject({ state: 'completed', changed: 1, refusedCount: 0 });
  expect(await s.temporal.workflow.getHandle(deviceWorkflowId(other!)).query(lifecycleStateQuery)).toMatchObject({ status: 'manufacturing', version: 1 });
}, 120_000);
