import { PasswordGate } from './password-gate';

describe('PasswordGate', () => {
  it('runs at most `concurrency` at once, queues up to maxQueued, and refuses beyond with 503', async () => {
    const gate = new PasswordGate(2, 3);
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const work = () =>
      new Promise<void>((resolve) => {
        running++;
        most = Math.max(most, running);
        releases.push(() => {
          running--;
          resolve();
        });
      });
    const all = Array.from({ length: 5 }, () => gate.run(work));
    await expect(gate.run(work)).rejects.toMatchObject({ status: 503 });
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      releases.shift()!();
    }
    await Promise.all(all);
    expect(most).toBe(2);
  });

  it('frees its slot when the work fails', async () => {
    const gate = new PasswordGate(1, 0);
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.run(async () => 7)).resolves.toBe(7);
  });
});
