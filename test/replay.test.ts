// Replay: every history kept in test/fixtures/histories must replay on today's workflow code.
// A change to a workflow that would break running workflows fails here (use patched() then).
// Record fresh fixtures from real runs with: RECORD_HISTORIES=1 npx jest test/replay.test.ts
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { findTemporalCli } from '../runtime/embedded/temporal-cli';
import type { Batch } from '../domain/model';
import { batchWorkflowId, deviceAnswerSignal, deviceConnectedSignal, deviceWorkflowId, pairingWorkflowId, shareExpiryWorkflowId, unpairWorkflowId } from '../domain/messages';
import { cancelPairing, requestPairing, unpair } from '../temporal/pairing-workflows';
import { testEnv } from './support/env';
import { rotateDeviceSecret, setDeviceBlocked, startDeviceLifecycle, transitionDevice } from '../temporal/device-workflows';
import { eventually, startStack, type Stack } from './support/stack';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'histories');

/**
 * Records the current generation of fixtures (the `-v4` files, and the first of the pairing,
 * unpair and share timer workflows: their `-v1`). Older generations were recorded on older
 * workflow code and are kept as they are: they prove that running workflows started on that code
 * still replay (see docs/versioning.md). A recording rewrites every file it saves: keep only the
 * ones of the generation you mean to add.
 */
async function record(): Promise<void> {
  const s = await startStack();
  const cli = findTemporalCli(ROOT)!;
  const save = (name: string, workflowId: string, runId?: string) =>
    fs.writeFileSync(
      path.join(FIXTURES, `${name}.json`),
      execFileSync(cli, ['workflow', 'show', '--workflow-id', workflowId, ...(runId ? ['--run-id', runId] : []), '--address', testEnv().temporalAddress, '--output', 'json']),
    );
  try {
    const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'replay', count: 3, model: 'evc-22' } })).json()) as Batch;
    // Sent right after the 201, while the batch may still be provisioned: the bulk workflow
    // checks (and if need be waits, on durable timers) until the batch is ready.
    const bulk = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing' } });
    const opId = bulk.headers.get('location')!.split('/').pop()!;
    await eventually(async () => ((await (await s.api(`/api/v1/bulk-operations/${opId}`)).json()) as { state: string }).state === 'completed', 120_000, 500);
    await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready', 60_000);
    const [id] = (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as string[];

    // A device workflow that continues-as-new after two changes (the test-only knob), whose
    // second run has an update rejected because Postgres refused the write (a NUL byte).
    const workflowId = deviceWorkflowId(id!);
    await s.temporal.workflow.getHandle(workflowId).terminate('re-started for the replay fixtures');
    await startDeviceLifecycle(s.temporal, s.taskQueue, {
      deviceId: id!,
      batchId: batch.id,
      companyId: null,
      model: 'evc-22',
      state: { status: 'manufacturing', blocked: false, version: 1 },
      continueAsNewAfter: 2,
    });
    const firstRun = (await s.temporal.workflow.getHandle(workflowId).describe()).runId;
    for (const status of ['manufactured', 'manufacturing']) await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status } });
    await eventually(async () => (await s.temporal.workflow.getHandle(workflowId, firstRun).describe()).status.name === 'CONTINUED_AS_NEW');
    const rejected = await transitionDevice(s.temporal, id!, { to: 'manufactured', actor: 'admin', reason: 'nul \u0000' }).catch((err: unknown) => err);
    if (!(rejected instanceof Error) || !/could not be recorded/.test(rejected.message)) throw new Error(`expected a rejected update, got ${String(rejected)}`);
    await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status: 'manufactured' } });
    const secondRun = (await s.temporal.workflow.getHandle(workflowId).describe()).runId;
    // v4: block, unblock, a secret rotation, and the first connection that makes the device free.
    await setDeviceBlocked(s.temporal, id!, { blocked: true, actor: 'admin' });
    await setDeviceBlocked(s.temporal, id!, { blocked: false, actor: 'admin' });
    await rotateDeviceSecret(s.temporal, id!, { actor: 'admin' });
    await s.temporal.workflow.getHandle(workflowId).signal(deviceConnectedSignal, { at: Date.now() });
    await eventually(async () => (await s.db('devices').where({ id }).first('status')).status === 'free');
    // That was the run's second change: it continued as new (the knob), so its history is complete.
    await eventually(async () => (await s.temporal.workflow.getHandle(workflowId, secondRun).describe()).status.name === 'CONTINUED_AS_NEW');

    await recordPairing(s, save, batch.id);
    await recordSharing(s, save, batch.id);

    save('device-lifecycle-v4-continue-as-new', workflowId, firstRun); // v4: manufactured after the broker has the login
    save('device-lifecycle-v4-access', workflowId, secondRun); // v4: rejected update, block, rotate, first connection
    save('batch-provisioning-v4', batchWorkflowId(batch.id)); // v4: syncs the batch's logins beside the starts
    save('bulk-status-v4', `bulk-status-${opId}`);
  } finally {
    await s.stop();
  }
}

/**
 * Pairing fixtures (v1): an attempt met by a second user and confirmed by the device, a cancelled
 * one, and an unpairing. The device's answer is the signal the bridge would send.
 */
async function recordPairing(s: Stack, save: (name: string, workflowId: string, runId?: string) => void, batchId: string): Promise<void> {
  const ctx = { temporal: s.temporal, db: s.db, taskQueue: s.taskQueue, timeoutS: 120 };
  const ids = (await s.db('devices').where({ batch_id: batchId }).orderBy('seq').pluck('id')) as string[];
  const [a, b] = [ids[1]!, ids[2]!];
  for (const id of [a, b]) {
    const st = (await s.db('devices').where({ id }).first('status')).status as string;
    for (const to of ['manufacturing', 'manufactured', 'free'].slice(st === 'manufacturing' ? 1 : 0)) await transitionDevice(s.temporal, id, { to: to as 'free', actor: 'admin' });
  }
  const code = (id: string) => s.credentials.device(id).pairingCode;
  const p = await requestPairing(ctx, { deviceId: a, code: code(a), userId: 'U-REPLAY' });
  await requestPairing(ctx, { deviceId: a, code: code(a), userId: 'U-OTHER' }).catch(() => undefined);
  await requestPairing(ctx, { deviceId: a, code: code(a), userId: 'U-REPLAY' });
  const handle = s.temporal.workflow.getHandle(pairingWorkflowId(a));
  const pairedRun = (await handle.describe()).runId;
  await handle.signal(deviceAnswerSignal, { pairingId: p.id, accept: true });
  await handle.result();
  const q = await requestPairing(ctx, { deviceId: b, code: code(b), userId: 'U-REPLAY' });
  await cancelPairing(ctx, { pairingId: q.id, userId: 'U-REPLAY' });
  await unpair(ctx, { deviceId: a, userId: 'U-REPLAY', asAdmin: false });
  save('pairing-v1-paired', pairingWorkflowId(a), pairedRun);
  save('pairing-v1-cancelled', pairingWorkflowId(b));
  save('unpair-v1', unpairWorkflowId(a));
}

/**
 * Share timer fixtures (v1), through the API: a share that runs to its end, and one its person
 * ends early (the API signals the timer). On the device whose pairing was cancelled, given an owner.
 */
async function recordSharing(s: Stack, save: (name: string, workflowId: string, runId?: string) => void, batchId: string): Promise<void> {
  const deviceId = ((await s.db('devices').where({ batch_id: batchId }).orderBy('seq').pluck('id')) as string[])[2]!;
  const [owner, sharee] = await Promise.all([s.endUser(), s.endUser()]);
  await s.db('devices').where({ id: deviceId }).update({ owner_id: owner.userId });
  const share = async (expiresAt: string) => {
    const r = await s.api(`/api/v1/devices/${deviceId}/shares`, { token: owner.token, method: 'POST', json: { userId: sharee.userId, role: 'viewer', expiresAt } });
    if (r.status !== 201) throw new Error(`share: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { id: string }).id;
  };
  const expiring = await share(new Date(Date.now() + 2_000).toISOString());
  if ((await s.temporal.workflow.getHandle(shareExpiryWorkflowId(expiring)).result()) !== 'expired') throw new Error('the share did not expire');
  const left = await share(new Date(Date.now() + 86_400_000).toISOString());
  const ended = await s.api(`/api/v1/devices/${deviceId}/shares/${left}`, { token: sharee.token, method: 'DELETE' });
  if (ended.status !== 200) throw new Error(`end share: ${ended.status} ${await ended.text()}`);
  if ((await s.temporal.workflow.getHandle(shareExpiryWorkflowId(left)).result()) !== 'ended') throw new Error('the share timer was not told');
  save('share-expiry-v1-expired', shareExpiryWorkflowId(expiring));
  save('share-expiry-v1-ended', shareExpiryWorkflowId(left));
}

it('replays every recorded workflow history on the current code', async () => {
  if (process.env.RECORD_HISTORIES) await record();
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(20);
  const out = execFileSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'scripts/replay-histories.ts'), testEnv().workflowBundlePath], { encoding: 'utf8' });
  expect(out).toContain(`${files.length} histories replayed`);
}, 600_000);
