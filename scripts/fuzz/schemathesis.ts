// One bounded schemathesis run against a running API: what `npm run fuzz` and test/fuzz.test.ts
// share. It reads the API's own /api/v1/openapi.json, checks every response against it, and
// fails on any server error, undocumented status, content type or header, or a request that hangs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureSchemathesis } = require('./ensure-schemathesis.js') as { ensureSchemathesis: () => string };

export const CHECKS = ['not_a_server_error', 'status_code_conformance', 'content_type_conformance', 'response_headers_conformance', 'response_schema_conformance'];

export interface FuzzOptions {
  /** Where the API listens, e.g. http://127.0.0.1:3000 (no /api/v1). */
  baseUrl: string;
  adminToken: string;
  /** Test cases per operation and phase. */
  maxExamples: number;
  /** A request slower than this fails the run (seconds). */
  requestTimeoutSec: number;
  /** The whole run is killed (and failed) after this long. */
  deadlineMs: number;
  /** IDs that exist, so that generated requests reach past the 404s. */
  known?: { batchIds?: string[]; deviceIds?: string[] };
  seed?: number;
  workers?: number;
  /** Default examples,fuzzing; `npm run fuzz` adds coverage (boundary values: slow) and stateful. */
  phases?: string[];
  /** Echo schemathesis' output as it runs. */
  echo?: boolean;
}

export interface FuzzResult {
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  /** From the JUnit report: one test per operation. */
  operations: number;
  failures: number;
  errors: number;
  output: string;
  /** The closing lines of schemathesis' output, and our verdict. */
  summary: string;
}

/**
 * The API's document as the fuzzer sees it: identical, except that a batch has at most a few
 * devices (generated batches of 100,000 devices would only measure provisioning).
 */
function fuzzDocument(doc: Record<string, any>): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const create = doc.paths?.['/api/v1/batches']?.post?.requestBody?.content?.['application/json']?.schema;
  if (create?.properties?.count) create.properties.count.maximum = 3;
  return doc;
}

function configToml(o: FuzzOptions): string {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const lines: string[] = [];
  const batchIds = o.known?.batchIds ?? [];
  const deviceIds = o.known?.deviceIds ?? [];
  if (batchIds.length || deviceIds.length) {
    lines.push('[dictionaries]');
    if (batchIds.length) lines.push(`batch-ids = { values = ${list(batchIds)} }`);
    if (deviceIds.length) lines.push(`device-ids = { values = ${list(deviceIds)} }`);
  }
  // Half the time a real ID, half a generated one.
  if (batchIds.length) lines.push('', '[[operations]]', 'include-path-regex = "^/api/v1/batches/\\\\{id\\\\}"', 'parameters = { "path.id" = { dictionary = "batch-ids", probability = 0.5 } }');
  if (deviceIds.length) lines.push('', '[[operations]]', 'include-path-regex = "^/api/v1/devices/\\\\{id\\\\}"', 'parameters = { "path.id" = { dictionary = "device-ids", probability = 0.5 } }');
  return `${lines.join('\n')}\n`;
}

function count(xml: string, attr: string): number {
  const m = new RegExp(`<testsuites?[^>]*\\s${attr}="(\\d+)"`).exec(xml);
  return m ? Number(m[1]) : 0;
}

export async function runSchemathesis(o: FuzzOptions): Promise<FuzzResult> {
  const bin = ensureSchemathesis();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-fuzz-'));
  try {
    const res = await fetch(`${o.baseUrl}/api/v1/openapi.json`);
    if (!res.ok) throw new Error(`GET /api/v1/openapi.json answered ${res.status}`);
    const schemaPath = path.join(dir, 'openapi.json');
    fs.writeFileSync(schemaPath, JSON.stringify(fuzzDocument((await res.json()) as Record<string, unknown>)));
    const configPath = path.join(dir, 'schemathesis.toml');
    fs.writeFileSync(configPath, configToml(o));
    const junit = path.join(dir, 'junit.xml');
    const args = [
      '--config-file', configPath,
      'run', schemaPath,
      '--url', o.baseUrl,
      '--header', `Authorization: Bearer ${o.adminToken}`,
      '--checks', CHECKS.join(','),
      '--phases', (o.phases ?? ['examples', 'fuzzing']).join(','),
      '--max-examples', String(o.maxExamples),
      '--request-timeout', String(o.requestTimeoutSec),
      // One worker: with two, hypothesis parses lambda sources from two threads at once, which
      // CPython before 3.11.8 can fail with "AST constructor recursion depth mismatch"
      // (gh-106905): a runtime error of the tool, seen here, not of the API.
      '--workers', String(o.workers ?? 1),
      '--seed', String(o.seed ?? Date.now() % 1_000_000),
      '--no-color',
      '--generation-database', 'none',
      '--report', 'junit', '--report-junit-path', junit,
    ];
    const child = spawn(bin, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false', NO_COLOR: '1' } });
    let output = '';
    const take = (b: Buffer) => {
      output += b.toString();
      if (o.echo) process.stdout.write(b);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // its own process group: schemathesis and its workers
      } catch {
        // already gone
      }
    }, o.deadlineMs);
    const exitCode: number | null = await new Promise((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    const xml = fs.existsSync(junit) ? fs.readFileSync(junit, 'utf8') : '';
    const operations = count(xml, 'tests');
    const failures = count(xml, 'failures');
    const errors = count(xml, 'errors');
    const ok = !timedOut && exitCode === 0 && failures === 0 && errors === 0;
    const tail = output.trimEnd().split('\n').slice(-12).join('\n');
    const verdict = timedOut
      ? `fuzz: FAILED: still running after ${Math.round(o.deadlineMs / 1000)} s (killed)`
      : `fuzz: ${ok ? 'passed' : 'FAILED'}: ${operations} operations, ${failures} failed, ${errors} errors (schemathesis exit ${exitCode})`;
    return { ok, exitCode, timedOut, operations, failures, errors, output, summary: `${tail}\n${verdict}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
