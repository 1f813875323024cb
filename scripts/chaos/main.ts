// The chaos run: `npm run chaos -- [--devices 2000] [--kills 6] [--seed 1] [--duration 120] [--rate 400]`
//
// Starts the stack (a fresh database on the machine's Postgres, a Temporal dev server and a
// Mosquitto of its own) and the product's api, worker and bridge as child processes; drives a
// batch, bulk and per-device status changes and the fleet's telemetry while it SIGKILLs the api,
// worker and bridge at random (seeded) moments, restarting each after a short random delay; then
// checks that nothing was lost, doubled or left inconsistent, prints the counts, and exits 1 on
// any mismatch. The last line is `CHAOS_RESULT <json>` for tests.
// PostgreSQL: BENCH_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { runBench, sleep, type Cleanup } from '../bench/support';
import { ApiClient } from './api-client';
import { bulkApplied, devicesOnce, expectFirstConnections, historyConsistent, lifecycleWorkflows, statusesAgree, telemetryTally, type Check, type TelemetryTally } from './checks';
import { planKills, runKills, seededRng, type KillRecord } from './monkey';
import { PRODUCT_PROCESSES, startChaosStack, waitReady, type ChaosStack, type ProductProcess } from './stack';
import { Workload, type WorkloadResult } from './workload';

const USAGE = 'usage: npm run chaos -- [--devices 2000] [--kills 6] [--seed <text>] [--duration <s>] [--rate <values/s>]';

function intOption(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, not "${v}"`);
  return n;
}

function options() {
  const { values: a } = parseArgs({
    options: {
      devices: { type: 'string' },
      kills: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const devices = intOption('devices', a.devices, 2000, 10);
  return {
    devices,
    kills: intOption('kills', a.kills, 6, 0),
    seed: a.seed ?? '1',
    durationS: intOption('duration', a.duration, 120, 10),
    rate: intOption('rate', a.rate, 400, 1),
    perDevice: Math.max(1, Math.min(25, Math.floor(devices / 20))),
  };
}

type Options = ReturnType<typeof options>;

/** The bridge has drained: buffered 0 and the table's row count unchanged for 3 s (at most 2 minutes). */
async function drainTelemetry(stack: ChaosStack, expectAtLeast: number): Promise<string> {
  const until = Date.now() + 120_000;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const n = Number((await stack.db.db('telemetry').count({ n: '*' }))[0]!.n);
    let buffered = -1;
    try {
      const h = (await (await fetch(`${stack.bridgeMetricsUrl}/healthz`, { signal: AbortSignal.timeout(3_000) })).json()) as { detail?: { buffered?: number } };
      buffered = h.detail?.buffered ?? -1;
    } catch {
      // restarting
    }
    if (n !== last) {
      last = n;
      stableSince = Date.now();
    }
    if (buffered === 0 && n >= expectAtLeast && Date.now() - stableSince >= 3_000) return `drained: ${n} rows`;
    if (Date.now() > until) return `not drained after 2 minutes: ${n} rows, ${expectAtLeast} acknowledged, bridge buffered ${buffered}`;
    await sleep(500);
  }
}

function printChecks(checks: Check[]): void {
  console.log('\nchecks');
  for (const c of checks) {
    console.log(`  ${c.mismatches === 0 ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}${c.mismatches ? ` — ${c.mismatches} mismatches` : ''}`);
    for (const e of c.examples) console.log(`          e.g. ${e}`);
  }
}

async function main(cleanup: Cleanup, o: Options): Promise<number> {
  const t0 = performance.now();
  console.log(`chaos: ${o.devices} devices, ${o.kills} kills, seed "${o.seed}", ${o.durationS} s, fleet ${o.rate} values/s`);
  const stack = await startChaosStack(cleanup);
  const { processes } = stack;
  const readyUrl = (p: ProductProcess) => (p.name === 'api' ? `${stack.apiUrl}/readyz` : p.name === 'bridge' ? `${stack.bridgeMetricsUrl}/healthz` : undefined);
  const ready = (p: ProductProcess) => waitReady(p, readyUrl(p));
  for (const n of PRODUCT_PROCESSES) processes[n].start();
  await Promise.all(PRODUCT_PROCESSES.map((n) => ready(processes[n])));
  console.log(`stack up in ${((performance.now() - t0) / 1000).toFixed(1)} s (database ${stack.db.name}, Temporal ${stack.temporalAddress}, Mosquitto ${stack.mqttUrl}, api ${stack.apiUrl}; logs in ${stack.logDir})`);
  // A crash nobody caused is a failure; the process is started again so the run can finish.
  for (const n of PRODUCT_PROCESSES) {
    processes[n].onCrash = (p) => {
      console.log(`  UNEXPECTED EXIT of ${p.name}: ${JSON.stringify(p.crashes.at(-1)?.code)} ${p.crashes.at(-1)?.signal ?? ''}; restarting`);
      setTimeout(() => p.start(), 1_000);
    };
  }

  const connection = await Connection.connect({ address: stack.temporalAddress });
  cleanup.add('close the Temporal connection', () => connection.close());
  const temporal = new Client({ connection, namespace: 'default' });
  const api = new ApiClient(stack.apiUrl, stack.adminToken);

  const plan = planKills(seededRng(o.seed, 'kills'), { kills: o.kills, durationS: o.durationS });
  console.log(`\nkill plan: ${plan.map((k) => `${k.victim}@${k.atS}s(+${k.downS}s)`).join(', ') || 'none'}`);

  let phase = 'start';
  const startedAt = performance.now();
  const elapsed = () => ((performance.now() - startedAt) / 1000).toFixed(1).padStart(6);
  const workload = new Workload(api, {
    devices: o.devices,
    rate: o.rate,
    mqttUrl: stack.mqttUrl,
    seed: o.seed,
    rng: seededRng(o.seed, 'workload'),
    perDevice: o.perDevice,
    setPhase: (p) => {
      phase = p;
      console.log(`  ${elapsed()} s  phase: ${p}`);
    },
    log: (line) => console.log(`  ${elapsed()} s${line.slice(1)}`),
    bulkIdle: async (batchId) => (await temporal.workflow.count(`WorkflowType = "bulkStatus" AND BatchId = "${batchId}" AND ExecutionStatus = "Running"`)).count === 0,
  });
  console.log('\nrun');
  const kills = runKills(plan, processes, { startedAt, phase: () => phase, onRestart: ready, log: (l) => console.log(l) });
  kills.catch(() => undefined); // awaited after the drive; not an unhandled rejection meanwhile
  const failures: string[] = [];
  let result: WorkloadResult;
  try {
    result = await workload.run();
  } catch (err) {
    failures.push(`the drive failed: ${(err as Error).message}`);
    result = workload.result;
  }
  const remaining = o.durationS * 1000 - (performance.now() - startedAt);
  if (remaining > 0) await sleep(remaining);
  let killed: KillRecord[] = [];
  try {
    killed = await kills;
  } catch (err) {
    failures.push(`a restart failed: ${(err as Error).message}`);
  }
  phase = 'settling';
  // Everything up again (a crashed process included) before the books are closed.
  for (const n of PRODUCT_PROCESSES) if (!processes[n].running()) processes[n].start();
  await Promise.all(PRODUCT_PROCESSES.map((n) => ready(processes[n]).catch((err: Error) => failures.push(err.message))));

  const fleet = result.fleet;
  if (fleet) {
    await fleet.stop({ graceful: true });
    const s = fleet.stats();
    console.log(`  ${elapsed()} s  fleet stopped: ${s.valuesSent} values sent, ${s.valuesPublished} acknowledged, ${s.valuesFailed} failed, ${s.reconnects} reconnects`);
    console.log(`  ${elapsed()} s  bridge ${await drainTelemetry(stack, s.valuesPublished)}`);
  }

  console.log(`\nkills (${killed.length} of ${plan.length} planned)`);
  for (const k of killed) console.log(`  ${k.victim.padEnd(6)} at ${k.killedAtS.toFixed(1)} s during ${k.phase}, restarted at ${k.restartedAtS.toFixed(1)} s`);
  for (const n of PRODUCT_PROCESSES) {
    const p = processes[n];
    console.log(`  ${n.padEnd(6)} started ${p.starts}x, killed ${p.kills}x, crashed ${p.crashes.length}x`);
  }
  console.log(`\napi client: ${api.stats.requests} requests, ${api.stats.retried} attempts retried (api down), ${api.stats.serverErrors.length} 5xx answers`);
  for (const n of result.notes) console.log(`  note: ${n}`);

  if (failures.length) console.log('\nNOTE: the drive did not complete; the checks below see a system that may still be at work');
  const checks: Check[] = [];
  let telemetry: TelemetryTally | null = null;
  if (result.batchId) {
    checks.push(await devicesOnce(stack.db.db, result, o.devices));
    checks.push(await lifecycleWorkflows(temporal, result, o.devices));
    const firstConnections = await expectFirstConnections(stack.db.db, result);
    if (firstConnections > 0) console.log(`  ${firstConnections} devices freed by their first connection while manufactured (expected: the lifecycle does it)`);
    checks.push(await statusesAgree(stack.db.db, temporal, result));
    checks.push(await historyConsistent(stack.db.db, result));
    checks.push(await bulkApplied(stack.db.db, result, o.devices));
    const t = await telemetryTally(stack.db.db, fleet);
    telemetry = t.tally;
    checks.push(t.check);
  }
  const crashes = PRODUCT_PROCESSES.flatMap((n) => processes[n].crashes.map((c) => `${n} exited by itself (code ${c.code}, signal ${c.signal}): ${c.tail.split('\n').slice(-3).join(' | ')}`));
  checks.push({ name: 'no process exited by itself', detail: `${crashes.length} unexpected exits`, mismatches: crashes.length, examples: crashes.slice(0, 5) });
  const se = api.stats.serverErrors;
  checks.push({ name: 'no 5xx answer (other than 503 while restarting)', detail: `${se.length} answers`, mismatches: se.length, examples: se.slice(0, 5).map((e) => `${e.method} ${e.path}: ${e.status} ${e.body}`) });
  checks.push({ name: 'the drive completed', detail: failures.length ? failures.join('; ') : 'yes', mismatches: failures.length, examples: [] });
  printChecks(checks);

  const mismatches = checks.reduce((s, c) => s + c.mismatches, 0);
  const verdict = mismatches === 0 ? 'PASS' : 'FAIL';
  console.log(`\n${verdict}: ${mismatches} mismatches in ${checks.filter((c) => c.mismatches > 0).length} of ${checks.length} checks (${((performance.now() - t0) / 1000).toFixed(0)} s in all)`);
  if (mismatches === 0) fs.rmSync(stack.logDir, { recursive: true, force: true });
  else console.log(`process logs kept in ${stack.logDir}`);
  console.log(
    `CHAOS_RESULT ${JSON.stringify({
      verdict,
      mismatches,
      seed: o.seed,
      devices: o.devices,
      kills: killed.map((k) => ({ victim: k.victim, atS: Math.round(k.killedAtS * 10) / 10, phase: k.phase })),
      checks: checks.map((c) => ({ name: c.name, mismatches: c.mismatches })),
      telemetry,
    })}`,
  );
  return mismatches === 0 ? 0 : 1;
}

let opts: Options;
try {
  opts = options();
} catch (err) {
  console.error(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
runBench((cleanup) => main(cleanup, opts));
