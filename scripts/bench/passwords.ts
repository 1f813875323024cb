// Password hashing benchmark: `npx tsx scripts/bench/passwords.ts [n]` (default 40 hashes).
// What a sign-in costs (domain/passwords.ts: scrypt N=2^14, r=8, p=5), one at a time and with
// as many in flight as libuv's thread pool runs, so the sign-in limits (api/sign-in-limiter.ts)
// and the sign-up limit can be read against what the machine can take.
import os from 'node:os';
import { PasswordGate } from '../../api/password-gate';
import { hashPassword, verifyPassword } from '../../domain/passwords';

const n = Number(process.argv[2] ?? 40);
if (!Number.isInteger(n) || n < 4) throw new Error(`usage: tsx scripts/bench/passwords.ts [n >= 4], got ${process.argv[2]}`);
const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

async function main() {
  const stored = await hashPassword('bench password 0123');
  const serial: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await verifyPassword('bench password 0123', stored);
    serial.push(performance.now() - t);
  }
  serial.sort((a, b) => a - b);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, () => verifyPassword('wrong password 0123', stored)));
  const parallelS = (performance.now() - t0) / 1000;
  // Event-loop stall while hashes run (what every other request waits), all at once and through the API's gate.
  async function stall(run: (work: () => Promise<boolean>) => Promise<boolean>): Promise<{ gap: number; seconds: number }> {
    let gap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gap = Math.max(gap, now - last);
      last = now;
    }, 5);
    const t = performance.now();
    await Promise.all(Array.from({ length: n }, () => run(() => verifyPassword('wrong password 0123', stored))));
    clearInterval(timer);
    return { gap, seconds: (performance.now() - t) / 1000 };
  }
  const free = await stall((w) => w());
  const gate = new PasswordGate(undefined, n);
  const gated = await stall((w) => gate.run(w));
  const pct = (p: number) => serial[Math.min(serial.length - 1, Math.floor(p * serial.length))]!.toFixed(0);
  process.stdout.write(
    [
      `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, UV_THREADPOOL_SIZE ${pool}`,
      `one verify at a time: p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms (${n} runs)`,
      `${n} verifies at once: ${parallelS.toFixed(2)} s, ${(n / parallelS).toFixed(1)} per second`,
      `event loop during ${n} at once: longest gap ${free.gap.toFixed(0)} ms (timer every 5 ms)`,
      `through the API's gate (${gate.concurrency} at a time): ${gated.seconds.toFixed(2)} s, ${(n / gated.seconds).toFixed(1)} per second, longest gap ${gated.gap.toFixed(0)} ms`,
    ].join('\n') + '\n',
  );
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
