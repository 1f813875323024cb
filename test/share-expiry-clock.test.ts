// A share's end on the time-skipping test server (design/environment.md): a share lent for 30
// days ends by its durable timer in moments; one revoked before then stops its timer; one whose
// timer fires after an unpair ended it changes nothing. The activities are the real ones on the
// suite's Postgres.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { shareEndedSignal, shareExpiryWorkflowId } from '../domain/messages';
import { newEntityId } from '../domain/ids';
import { createShare, endDeviceShares, getShare } from '../db/repositories/shares';
import { startTimeSkipping, type TimeSkipping } from './support/time-skipping';
import { eventually, startStack, type Caller, type Stack } from './support/stack';

const DAYS_30 = 30 * 86_400_000;

let clock: TimeSkipping;
let env: TestWorkflowEnvironment;
let s: Stack;
let deviceId: string;
let sharees: Caller[];

/** A share of the device for 30 days (as the API records it), with its timer started on the test server. */
async function lend(to: Caller): Promise<{ id: string; expiresAt: string }> {
  const expiresAt = new Date((await env.currentTimeMs()) + DAYS_30).toISOString();
  const share = await createShare(s.db, { id: newEntityId(), deviceId, userId: to.userId, role: 'viewer', expiresAt, createdBy: 'U-OWNER' }, s.companyId, { userId: 'U-OWNER', credentialId: null });
  await env.client.workflow.start('shareExpiry', { workflowId: shareExpiryWorkflowId(share.id), taskQueue: clock.taskQueue, args: [{ shareId: share.id, deviceId, expiresAt }] });
  return { id: share.id, expiresAt };
}

beforeAll(async () => {
  s = await startStack();
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'share clock', count: 1 } });
  const batchId = ((await r.json()) as { id: string }).id;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batchId}`)).json()) as { provisioning: { status: string } }).provisioning.status === 'ready');
  deviceId = (await s.db('devices').where({ batch_id: batchId }).first('id')).id as string;
  sharees = await Promise.all([s.endUser(), s.endUser(), s.endUser()]);
  // The share activities' client is the test server's: the timers' signals go there.
  clock = await startTimeSkipping(s, 'share-clock', { activitiesClient: (e) => e.client });
  env = clock.env;
}, 120_000);

afterAll(async () => {
  await clock?.stop();
  await s?.stop();
});

it('ends a 30-day share at its end, by the durable timer', async () => {
  const { id, expiresAt } = await lend(sharees[0]!);
  const started = await env.currentTimeMs();
  expect(await env.client.workflow.getHandle(shareExpiryWorkflowId(id)).result()).toBe('expired');
  expect((await env.currentTimeMs()) - started).toBeGreaterThanOrEqual(DAYS_30 - 60_000);
  expect(await getShare(s.db, deviceId, id)).toMatchObject({ endReason: 'expired', expiresAt });
  const logged = await s.db('audit_events').where({ action: 'device.share_ended', target_id: id }).first('details');
  expect(logged.details).toMatchObject({ reason: 'expired' });
}, 60_000);

it('stops the timer of a share ended before its time, which stays ended as it was', async () => {
  const { id } = await lend(sharees[1]!);
  await env.sleep(DAYS_30 / 2);
  await endDeviceShares(s.db, deviceId, 'unpaired', { userId: 'U-OWNER', credentialId: null });
  await env.client.workflow.getHandle(shareExpiryWorkflowId(id)).signal(shareEndedSignal);
  expect(await env.client.workflow.getHandle(shareExpiryWorkflowId(id)).result()).toBe('ended');
  expect(await getShare(s.db, deviceId, id)).toMatchObject({ endReason: 'unpaired' });
}, 60_000);

it('changes nothing when a timer that missed the signal fires on a share already ended', async () => {
  const { id } = await lend(sharees[2]!);
  await endDeviceShares(s.db, deviceId, 'unpaired', { userId: 'U-OWNER', credentialId: null });
  const before = await getShare(s.db, deviceId, id);
  expect(await env.client.workflow.getHandle(shareExpiryWorkflowId(id)).result()).toBe('expired');
  expect(await getShare(s.db, deviceId, id)).toEqual(before);
  expect(await s.db('audit_events').where({ action: 'device.share_ended', target_id: id }).count({ n: '*' })).toEqual([{ n: '1' }]);
}, 60_000);
