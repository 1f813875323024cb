// The kill schedule: a bounded number of SIGKILLs of the api, worker and bridge at random moments
// of the run (seeded: the same seed gives the same schedule), each victim started again after a
// short random delay. Every process is hit at least once when there are at least three kills.
import { performance } from 'node:perf_hooks';
import { createRng, type Rng } from '../../firmware/models/rng';
import { sleep } from '../bench/support';
import { PRODUCT_PROCESSES, type ProductName, type ProductProcess } from './stack';

export interface PlannedKill {
  /** Seconds after the start of the drive. */
  atS: number;
  victim: ProductName;
  /** How long it stays down before it is started again. */
  downS: number;
}

export interface KillRecord extends PlannedKill {
  /** What the drive was doing at that moment. */
  phase: string;
  /** pid of the tsx process killed (null when it was not running). */
  pid: number | null;
  /** When it was really killed and started again (seconds after the start). */
  killedAtS: number;
  restartedAtS: number;
}

export function planKills(rng: Rng, o: { kills: number; durationS: number; minDownS?: number; maxDownS?: number }): PlannedKill[] {
  const minDown = o.minDownS ?? 0.3;
  const maxDown = o.maxDownS ?? 3;
  const victims: ProductName[] = [];
  for (let i = 0; i < o.kills; i++) victims.push(i < PRODUCT_PROCESSES.length ? PRODUCT_PROCESSES[i]! : PRODUCT_PROCESSES[Math.floor(rng() * PRODUCT_PROCESSES.length)]!);
  // Fisher-Yates: which process goes first is random too.
  for (let i = victims.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [victims[i], victims[j]] = [victims[j]!, victims[i]!];
  }
  // Moments in the first 85 % of the run (the rest lets the last restarted process settle in).
  const window = o.durationS * 0.85;
  const times = victims.map(() => 1 + rng() * Math.max(0, window - 1)).sort((a, b) => a - b);
  return victims.map((victim, i) => ({ atS: Math.round(times[i]! * 100) / 100, victim, downS: Math.round((minDown + rng() * (maxDown - minDown)) * 100) / 100 }));
}

export function seededRng(seed: string, purpose: string): Rng {
  return createRng(`${seed}:${purpose}`);
}

/**
 * Runs the plan against the processes. A victim still down from an earlier kill is not killed
 * twice at once: its kill waits until it is up again. Resolves when every kill is done and every
 * process runs again (`onRestart` waits for its readiness).
 */
export async function runKills(
  plan: readonly PlannedKill[],
  processes: Record<ProductName, ProductProcess>,
  o: { startedAt: number; phase: () => string; onRestart: (p: ProductProcess) => Promise<void>; log: (line: string) => void },
): Promise<KillRecord[]> {
  const records: KillRecord[] = [];
  const busy = new Map<ProductName, Promise<void>>();
  const elapsed = () => (performance.now() - o.startedAt) / 1000;
  const jobs = plan.map(async (k) => {
    await sleep(Math.max(0, k.atS * 1000 - (performance.now() - o.startedAt)));
    while (busy.has(k.victim)) await busy.get(k.victim);
    const p = processes[k.victim];
    const job = (async () => {
      const pid = p.pid;
      const phase = o.phase();
      await p.kill();
      const killedAtS = elapsed();
      o.log(`  ${killedAtS.toFixed(1).padStart(6)} s  SIGKILL ${k.victim.padEnd(6)} (pid ${pid ?? '-'}) during ${phase}; down for ${k.downS} s`);
      await sleep(k.downS * 1000);
      p.start();
      const restartedAtS = elapsed();
      await o.onRestart(p);
      records.push({ ...k, phase, pid, killedAtS, restartedAtS });
    })();
    busy.set(k.victim, job);
    try {
      await job;
    } finally {
      busy.delete(k.victim);
    }
  });
  await Promise.all(jobs);
  return records.sort((a, b) => a.killedAtS - b.killedAtS);
}
