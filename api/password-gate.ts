// Password hashing is the API's one CPU-heavy request (~0.2 s of a core each: scrypt). Run all at
// once, sign-ins would starve the event loop and every other request with it (measured in
// docs/benchmarks.md "Passwords"); so at most `concurrency` hash at a time (half the cores), a
// bounded queue waits, and beyond it the answer is 503 with Retry-After instead of a pile-up.
import os from 'node:os';
import { UnavailableError } from '../domain/errors';

export class PasswordGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly concurrency = Math.max(1, Math.floor(os.cpus().length / 2)),
    readonly maxQueued = 64,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) throw new UnavailableError('too many sign-ins at once: retry in a second');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on as it is
      else this.running--;
    }
  }
}
