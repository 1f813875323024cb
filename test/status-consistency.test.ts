// Postgres and Temporal never disagree about a device's status: a change is recorded in
// Postgres before the workflow's state and its DeviceStatus search attribute move, and a change
// Postgres refuses (here a NUL character, which Postgres text cannot hold) rejects the update
// at once, non-retryable, and leaves the device as it was everywhere.
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Batch } from '../domain/model';
import { deviceWorkflowId, lifecycleStateQuery, STATUS_NOT_RECORDED, transitionUpdate } from '../domain/messages';
import { SA } from '../domain/search-attributes';
import { AppError } from '../domain/errors';
import { transitionDevice } from '../temporal/device-workflows';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(() => s.stop());

async function readyBatch(count: number): Promise<string[]> {
  const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'consistency', count } })).json()) as Batch;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready', 60_000);
  return (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as string[];
}

/** Each device as Postgres, the workflow's state and its search attribute see it. */
async function threeViews(id: string) {
  const handle = s.temporal.workflow.getHandle(deviceWorkflowId(id));
  const row = (await s.db('devices').where({ id }).first('status')) as { status: string };
  const state = await handle.query(lifecycleStateQuery);
  const attr = (await handle.describe()).typedSearchAttributes.get(SA.DeviceStatus);
  return { postgres: row.status, workflow: state.status, searchAttribute: attr };
}

const setStatus = (id: string, status: string) => s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status } });

it('rejects a change Postgres refuses, promptly, and leaves every view of the device as it was', async () => {
  const [id] = await readyBatch(1);
  expect((await setStatus(id!, 'manufacturing')).status).toBe(200);

  const handle = s.temporal.workflow.getHandle(deviceWorkflowId(id!));
  // Before the fix this update waited for an activity retrying forever, with the workflow
  // already saying 'manufactured'. A generous bound, far below "forever".
  const started = Date.now();
  const failure = await handle.executeUpdate(transitionUpdate, { args: [{ to: 'manufactured', actor: 'admin', reason: 'nul \u0000 byte' }] }).then(
    () => null,
    (err: unknown) => err,
  );
  expect(Date.now() - started).toBeLessThan(45_000);
  expect(failure).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (failure as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).type).toBe(STATUS_NOT_RECORDED);

  expect(await threeViews(id!)).toEqual({ postgres: 'manufacturing', workflow: 'manufacturing', searchAttribute: 'manufacturing' });
  expect(await handle.query(lifecycleStateQuery)).toEqual({ status: 'manufacturing', blocked: false, version: 1 });
  // The same failure through the shared client call is a clear domain error, not a hang or a 500.
  await expect(transitionDevice(s.temporal, id!, { to: 'manufactured', actor: 'admin', reason: '\u0000' })).rejects.toMatchObject({ status: 422, code: STATUS_NOT_RECORDED });
  // The device still moves afterwards, numbered right after the last recorded change.
  expect((await setStatus(id!, 'manufactured')).status).toBe(200);
  expect(await s.db('devices').where({ id }).first('status', 'status_version')).toEqual({ status: 'manufactured', status_version: 2 });
  expect(await threeViews(id!)).toEqual({ postgres: 'manufactured', workflow: 'manufactured', searchAttribute: 'manufactured' });
}, 120_000);

it('agrees with Postgres for every device after a mix of accepted, refused, concurrent and failed changes', async () => {
  const ids = await readyBatch(12);
  const moves: Promise<unknown>[] = [];
  ids.forEach((id, i) => {
    if (i % 4 === 0) moves.push(setStatus(id, 'manufacturing'));
    if (i % 4 === 1) moves.push(setStatus(id, 'paired')); // illegal: refused by the validator
    if (i % 4 === 2) {
      // concurrent: each is checked against, and numbered after, the one before it
      moves.push(setStatus(id, 'manufacturing'), setStatus(id, 'manufactured'), setStatus(id, 'manufacturing'));
    }
    if (i % 4 === 3) {
      moves.push(
        setStatus(id, 'manufacturing').then(() =>
          transitionDevice(s.temporal, id, { to: 'manufactured', actor: 'admin', reason: 'bad\u0000' }).catch((err: unknown) => {
            if (!(err instanceof AppError) || err.code !== STATUS_NOT_RECORDED) throw err;
          }),
        ),
      );
    }
  });
  await Promise.all(moves);

  for (const id of ids) {
    const views = await threeViews(id);
    expect({ id, ...views }).toEqual({ id, postgres: views.postgres, workflow: views.postgres, searchAttribute: views.postgres });
    const state = await s.temporal.workflow.getHandle(deviceWorkflowId(id)).query(lifecycleStateQuery);
    const versions = (await s.db('device_status_events').where({ device_id: id }).orderBy('version').pluck('version')) as number[];
    expect(versions).toEqual(Array.from({ length: state.version }, (_, k) => k + 1));
  }
  const statuses = await Promise.all(ids.map(async (id) => (await threeViews(id)).postgres));
  expect(statuses.filter((st, i) => i % 4 === 3 && st === 'manufacturing')).toHaveLength(3); // the failed change left them there
  expect(statuses.filter((st, i) => i % 4 === 1 && st === 'new')).toHaveLength(3);
}, 180_000);
