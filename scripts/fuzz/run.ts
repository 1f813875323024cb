// `npm run fuzz`: a longer schemathesis run. Without --url it starts its own stack, as the tests
// do (Postgres database on the machine's server, Temporal dev server, Mosquitto, the API and a
// worker), creates a batch so that real IDs exist, fuzzes, prints a summary and stops it all.
//
//   npm run fuzz                              # own stack, 60 examples per operation, every phase
//   npm run fuzz -- --max-examples 200 --deadline 1800
//   npm run fuzz -- --url http://127.0.0.1:3000 --token "$ADMIN_TOKEN"
//   npm run fuzz -- --serve                   # only start the stack and print its URL and token
//
// Exits 0 only when every check passed and the run ended before its deadline.
import { parseArgs } from 'node:util';
import globalSetup from '../../test/global-setup';
import globalTeardown from '../../test/global-teardown';
import { eventually, startStack, type Stack } from '../../test/support/stack';
import type { Batch } from '../../domain/model';
import { runSchemathesis } from './schemathesis';

async function knownIds(api: (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>) {
  const company = await api('/api/v1/companies', { method: 'POST', json: { name: 'fuzz' } });
  if (company.status !== 201) throw new Error(`creating the fuzz company answered ${company.status}`);
  const { id: companyId } = (await company.json()) as { id: string };
  const r = await api('/api/v1/batches', { method: 'POST', json: { companyId, name: 'fuzz', count: 3 } });
  if (r.status !== 201 && r.status !== 202) throw new Error(`creating the fuzz batch answered ${r.status}`);
  const batch = (await r.json()) as Batch;
  await eventually(async () => ((await (await api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready', 60_000);
  const devices = (await (await api(`/api/v1/devices?batchId=${batch.id}`)).json()) as { items: { id: string }[] };
  return { batchIds: [batch.id], deviceIds: devices.items.map((d) => d.id) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'max-examples': { type: 'string', default: '60' },
      'request-timeout': { type: 'string', default: '30' },
      deadline: { type: 'string', default: '1800' },
      seed: { type: 'string' },
      phases: { type: 'string', default: 'examples,coverage,fuzzing,stateful' },
      serve: { type: 'boolean', default: false },
    },
  });
  let stack: Stack | null = null;
  let baseUrl = values.url;
  let token = values.token ?? process.env.ADMIN_TOKEN;
  if (!baseUrl) {
    await globalSetup();
    stack = await startStack({ bulkWaitMs: 2_000, acceptWaitMs: 5_000, replyTimeoutMs: 500 });
    baseUrl = stack.baseUrl;
    token = stack.adminToken;
  }
  if (!token) throw new Error('--token (or ADMIN_TOKEN) is needed with --url');
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(baseUrl + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
  };
  const stop = async () => {
    if (!stack) return;
    await stack.stop();
    await globalTeardown();
  };
  try {
    const known = await knownIds(api);
    if (values.serve) {
      process.stdout.write(`${JSON.stringify({ baseUrl, token, ...known })}\n`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      return 0;
    }
    const r = await runSchemathesis({
      baseUrl,
      adminToken: token,
      maxExamples: Number(values['max-examples']),
      requestTimeoutSec: Number(values['request-timeout']),
      deadlineMs: Number(values.deadline) * 1000,
      known,
      seed: values.seed ? Number(values.seed) : undefined,
      phases: values.phases!.split(','),
      echo: true,
    });
    process.stdout.write(`\n${r.summary.split('\n').at(-1)}\n`);
    return r.ok ? 0 : 1;
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fuzz: ${err.stack ?? err.message}\n`);
    process.exit(2);
  },
);
