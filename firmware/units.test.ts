import { backoffDelay } from './backoff';
import { runDiagnostic, type DiagnosticsHost } from './diagnostics';
import { describeDevice } from './homie-description';
import { LogRing } from './log-ring';
import { getModel } from './models';
import { createRng } from './models/rng';
import { TimerWheel } from './timer-wheel';
import { RDM_EXTENSION_ID } from '../domain/topics';

describe('backoff', () => {
  it('doubles up to the ceiling, with jitter in [base/2, base]', () => {
    const rng = createRng(7);
    const o = { initialMs: 100, maxMs: 1_000, factor: 2 };
    for (let attempt = 0; attempt < 10; attempt++) {
      const base = Math.min(1_000, 100 * 2 ** attempt);
      for (let k = 0; k < 50; k++) {
        const d = backoffDelay(attempt, o, rng);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      }
    }
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(3, o, rng)));
    expect(spread.size).toBeGreaterThan(10);
  });
});

describe('LogRing', () => {
  it('keeps the last records in order', () => {
    const r = new LogRing(3);
    for (let i = 1; i <= 5; i++) r.push({ level: 'info', message: `m${i}` });
    expect(r.size).toBe(3);
    expect(r.last().map((x) => x.message)).toEqual(['m3', 'm4', 'm5']);
    expect(r.last(2).map((x) => x.message)).toEqual(['m4', 'm5']);
    expect(r.last(0)).toEqual([]);
  });
});

describe('diagnostics', () => {
  const host: DiagnosticsHost = {
    uptimeMs: () => 1234,
    selfTest: () => [
      { check: 'a/b', ok: true },
      { check: 'c/d', ok: false, detail: 'stuck' },
    ],
    logs: (n) => Array.from({ length: n }, (_, i) => ({ level: 'info' as const, message: `l${i}` })),
  };
  it('answers each command', () => {
    expect(runDiagnostic(host, { command: 'ping' })).toEqual({ answer: { ok: true, result: { pong: true, uptimeMs: 1234 } }, reboot: false });
    const st = runDiagnostic(host, { command: 'self-test' }).answer;
    expect(st).toEqual({ ok: false, error: 'self-test failed: c/d', result: { passed: false, checks: host.selfTest() } });
    expect(runDiagnostic(host, { command: 'read-logs', args: { lines: 2 } }).answer.result).toEqual({ lines: [{ level: 'info', message: 'l0' }, { level: 'info', message: 'l1' }] });
    expect(runDiagnostic(host, { command: 'read-logs', args: { lines: 0 } }).answer.ok).toBe(false);
    expect(runDiagnostic(host, { command: 'reboot' })).toEqual({ answer: { ok: true, result: { rebooting: true } }, reboot: true });
    expect(runDiagnostic(host, { command: 'format-disk' }).answer).toEqual({ ok: false, error: expect.stringMatching(/unknown command "format-disk"/) });
    expect(runDiagnostic(host, null).answer.ok).toBe(false);
  });
});

describe('describeDevice', () => {
  const base = { deviceId: 'ABCDEFGHJKMN', model: getModel('lock'), name: 'Door', firmwareName: 'fw', firmwareVersion: '1.2.3', localIp: '10.0.0.2', mac: '02:00:00:00:00:01', statsIntervalS: 60, detail: 'full' as const };
  it('Homie 4: $homie first, $extensions with $rdm, property attributes', () => {
    const m = new Map(describeDevice({ ...base, homie: '4.0' }));
    const first = describeDevice({ ...base, homie: '4.0' })[0]!;
    expect(first).toEqual(['homie/abcdefghjkmn/$homie', '4.0.0']);
    expect(m.get('homie/abcdefghjkmn/$extensions')).toContain(RDM_EXTENSION_ID);
    expect(m.get('homie/abcdefghjkmn/$nodes')).toBe('lock');
    expect(m.get('homie/abcdefghjkmn/lock/$properties')).toBe('locked,battery,door');
    expect(m.get('homie/abcdefghjkmn/lock/battery/$format')).toBe('0:100');
    expect(m.get('homie/abcdefghjkmn/lock/battery/$unit')).toBe('%');
    expect(m.get('homie/abcdefghjkmn/lock/locked/$settable')).toBe('true');
    expect(m.get('homie/abcdefghjkmn/lock/door/$retained')).toBe('true');
    expect(m.has('homie/abcdefghjkmn/$stats/interval')).toBe(false);
  });
  it('Homie 3: 3.0.1 with $fw, $stats/interval, no $extensions; values-only is two messages', () => {
    const m = new Map(describeDevice({ ...base, homie: '3.0' }));
    expect(m.get('homie/abcdefghjkmn/$homie')).toBe('3.0.1');
    expect(m.get('homie/abcdefghjkmn/$fw/version')).toBe('1.2.3');
    expect(m.get('homie/abcdefghjkmn/$stats/interval')).toBe('60');
    expect(m.has('homie/abcdefghjkmn/$extensions')).toBe(false);
    expect(describeDevice({ ...base, homie: '4.0', detail: 'values-only' })).toHaveLength(2);
  });
});

describe('TimerWheel', () => {
  it('fires each entry at its exact long-run rate, catching up after a stall', () => {
    let now = 1_000;
    const w = new TimerWheel({ resolutionMs: 2, slots: 64, now: () => now });
    const counts = [0, 0, 0, 0];
    const periods = [1, 3.3, 50, 1_000]; // shorter than a slot, odd, ordinary, longer than a turn (128 ms)
    const entries = periods.map((p, i) => w.add(() => counts[i]!++, p, now + p));
    for (let t = 0; t < 10_000; t += 1.7) {
      now = 1_000 + t;
      if (t > 4_000 && t < 4_500) continue; // a stall: nothing runs for 0.5 s
      w.advance();
    }
    now = 11_000;
    w.advance();
    periods.forEach((p, i) => expect(counts[i]).toBe(Math.floor(10_000 / p)));
    expect(w.maxLagMs).toBeGreaterThan(400);
    w.remove(entries[0]!);
    const before = counts[0];
    now += 100;
    w.advance();
    expect(counts[0]).toBe(before);
    expect(counts[1]).toBeGreaterThan(Math.floor(10_000 / 3.3));
    expect(w.size).toBe(3);
  });

  it('runs on real time: fires repeatedly, never ahead of schedule, and not after stop()', async () => {
    const w = new TimerWheel({ resolutionMs: 2 });
    let n = 0;
    const t0 = performance.now();
    w.add(() => n++, 10);
    w.start();
    // A busy machine only delays the firings (the exact pace is the test above, on a fake clock).
    const deadline = t0 + 15_000;
    while (n < 10 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    w.stop();
    const elapsed = performance.now() - t0;
    expect(n).toBeGreaterThanOrEqual(10);
    expect(n).toBeLessThanOrEqual(Math.floor(elapsed / 10) + 1);
    const stopped = n;
    await new Promise((r) => setTimeout(r, 50));
    expect(n).toBe(stopped);
  });
});
