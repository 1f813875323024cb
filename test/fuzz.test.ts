// A bounded schema-based fuzz run (schemathesis) against the real stack: zero server errors, zero
// responses the OpenAPI document does not describe, zero requests that hang. `npm run fuzz` runs
// a longer one (scripts/fuzz/run.ts).
//
// `npm test` runs this file on its own after the rest: beside the other files in a two-worker run
// it has run past its deadline (25 s alone; what slows its stack there is not found yet, see the
// issue notes), so it gets a quiet stack of its own.
import type { Batch } from '../domain/model';
import { runSchemathesis } from '../scripts/fuzz/schemathesis';
import { eventually, startStack, type Stack } from './support/stack';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureSchemathesis } = require('../scripts/fuzz/ensure-schemathesis.js') as { ensureSchemathesis: () => string };

let s: Stack;
// On a fresh machine this installs schemathesis (pinned) into .tools/venv first.
beforeAll(() => void ensureSchemathesis(), 600_000);
beforeAll(async () => {
  s = await startStack({ bulkWaitMs: 2_000, acceptWaitMs: 5_000, replyTimeoutMs: 500 });
}, 120_000);
afterAll(() => s.stop());

test('the API answers generated requests as its OpenAPI document says', async () => {
  const batch = (await (await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'fuzz', count: 2 } })).json()) as Batch;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready', 120_000, 250);
  const deviceIds = (await s.db('devices').where({ batch_id: batch.id }).pluck('id')) as string[];
  const r = await runSchemathesis({
    baseUrl: s.baseUrl,
    adminToken: s.adminToken,
    maxExamples: Number(process.env.FUZZ_MAX_EXAMPLES ?? 4),
    requestTimeoutSec: 20,
    // Alone it takes ~25 s; beside the rest of the suite on a 2-core machine it has taken over 170 s.
    deadlineMs: 280_000,
    known: { batchIds: [batch.id], deviceIds },
    seed: 1,
  });
  if (!r.ok) process.stderr.write(`${r.output.slice(-20_000)}\n`);
  expect(r.summary).toMatch(/fuzz: passed/);
  expect(r.operations).toBeGreaterThan(20);
}, 330_000);
