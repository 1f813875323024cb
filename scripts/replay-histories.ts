// Replays every workflow history in test/fixtures/histories on the current workflow code and
// exits non-zero on any nondeterminism. Run by test/replay.test.ts, or by hand (`npm run replay`)
// before changing a workflow.
import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../worker/create-worker';

const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures', 'histories');

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const bundle = process.argv[2] ? { workflowBundle: { codePath: process.argv[2] } } : { workflowsPath: WORKFLOWS_PATH };
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  for (const file of files) {
    const history = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));
    await Worker.runReplayHistory({ ...bundle, replayName: file }, history, file.replace(/\.json$/, ''));
    console.log(`replayed ${file}`);
  }
  console.log(`${files.length} histories replayed`);
}

main().catch((err) => {
  console.error(`replay failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
