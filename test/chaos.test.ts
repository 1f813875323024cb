// The short chaos run: `npm run chaos` with small numbers (300 devices, 3 SIGKILLs: one each of
// the api, the worker and the bridge, at seeded random moments). It starts its own Postgres
// database, Temporal dev server and Mosquitto, and the product as child processes; it must end
// with every check passed: devices once, statuses agreeing, bulk changes once, telemetry exact.
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
// Generous: on a busy machine the drive (not the kills) takes minutes; speed is not what is tested.
const TIMEOUT_MS = 600_000;

interface ChaosResult {
  verdict: 'PASS' | 'FAIL';
  mismatches: number;
  kills: { victim: string }[];
  checks: { name: string; mismatches: number }[];
  telemetry: { acked: number; stored: number; lost: number; doubled: number } | null;
}

function runChaos(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'scripts', 'chaos', 'main.ts'), ...args], {
      cwd: root,
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // A hung run is stopped by SIGTERM, so that its own clean-up stops what it started.
    const term = setTimeout(() => child.kill('SIGTERM'), TIMEOUT_MS - 40_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS - 10_000);
    child.once('exit', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code, output });
    });
  });
}

it('a short chaos run (300 devices, api, worker and bridge each SIGKILLed once) loses, doubles and breaks nothing', async () => {
  const { code, output } = await runChaos(['--devices', '300', '--kills', '3', '--seed', 'jest', '--duration', '45', '--rate', '300']);
  const line = output.split('\n').find((l) => l.startsWith('CHAOS_RESULT '));
  if (!line) throw new Error(`the chaos run printed no result (exit ${code}):\n${output.slice(-4000)}`);
  const result = JSON.parse(line.slice('CHAOS_RESULT '.length)) as ChaosResult;
  if (code !== 0 || result.mismatches !== 0) throw new Error(`the chaos run failed (exit ${code}):\n${output.slice(-6000)}`);
  expect(result.verdict).toBe('PASS');
  expect(new Set(result.kills.map((k) => k.victim))).toEqual(new Set(['api', 'worker', 'bridge']));
  expect(result.checks.every((c) => c.mismatches === 0)).toBe(true);
  expect(result.telemetry!.acked).toBeGreaterThan(0);
  expect(result.telemetry!.stored).toBe(result.telemetry!.acked);
}, TIMEOUT_MS);
