// Replay: every history kept in test/fixtures/histories must replay on today's workflow code.
// A change to a workflow that would break running workflows fails here (use patched() then).
// Record fresh fixtures from real runs with: RECORD_HISTORIES=1 npx jest test/replay.test.ts
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { findTemporalCli } from '../runtime/embedded/temporal-cli';
import type { Batch } from '../domain/model';
import { batchWorkflowId, deviceWorkflowId } from '../domain/messages';
import { testEnv } from './support/env';
import { eventually, startStack } from './support/stack';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'histories');

async function record(): Promise<void> {
  const s = await startStack();
  try {
    const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { name: 'replay', count: 3, model: 'evc-22' } })).json()) as Batch;
    await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready');
    const [id] = (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as string[];
    for (const status of ['manufacturing', 'manufactured', 'paired', 'free']) await s.api(`/api/v1/devices/${id}/status`, { method: 'POST', json: { status } });
    const bulk = await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status: 'manufacturing' } });
    const opId = bulk.headers.get('location')!.split('/').pop()!;
    const save = async (name: string, workflowId: string) =>
      fs.writeFileSync(
        path.join(FIXTURES, `${name}.json`),
        execFileSync(findTemporalCli(ROOT)!, ['workflow', 'show', '--workflow-id', workflowId, '--address', testEnv().temporalAddress, '--output', 'json']),
      );
    await save('device-lifecycle-v1', deviceWorkflowId(id!));
    await save('batch-provisioning-v1', batchWorkflowId(batch.id));
    await save('bulk-status-v1', `bulk-status-${opId}`);
  } finally {
    await s.stop();
  }
}

it('replays every recorded workflow history on the current code', async () => {
  if (process.env.RECORD_HISTORIES) await record();
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(3);
  const out = execFileSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'scripts/replay-histories.ts'), testEnv().workflowBundlePath], { encoding: 'utf8' });
  expect(out).toContain(`${files.length} histories replayed`);
}, 120_000);
