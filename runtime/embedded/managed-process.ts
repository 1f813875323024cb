// A server child process (postgres, temporal) that never outlives us and explains its failures.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from '../logger';

/** The part of a pino logger the embedded services use (tests can pass a silent pino). */
export type EmbeddedLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface ManagedProcess {
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** The last lines of its stdout and stderr, for error messages. */
  tail(): string;
  /** Sends `signal`, escalates to SIGKILL after `timeoutMs`, resolves once it has exited. Idempotent. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<void>;
}

export interface SpawnManagedOptions {
  name: string;
  log: EmbeddedLog;
  /** Sent to the child when this process exits or dies (even by SIGKILL, where setpriv exists). */
  exitSignal: NodeJS.Signals;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  tailLines?: number;
}

let pdeathsigSupport: boolean | undefined;

/**
 * util-linux `setpriv --pdeathsig` makes the kernel signal the child when we die, even by
 * SIGKILL, which no Node handler can catch. Linux only; elsewhere the 'exit' hook has to do.
 */
function setprivPdeathsig(): boolean {
  if (pdeathsigSupport === undefined) {
    const r = process.platform === 'linux' ? spawnSync('setpriv', ['--help'], { encoding: 'utf8' }) : null;
    pdeathsigSupport = !!r && r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return pdeathsigSupport;
}

export function spawnManaged(command: string, args: string[], o: SpawnManagedOptions): ManagedProcess {
  const [cmd, argv] = setprivPdeathsig()
    ? ['setpriv', ['--pdeathsig', o.exitSignal, '--', command, ...args]] // setpriv execs: same pid
    : [command, args];
  const child: ChildProcess = spawn(cmd, argv, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    uid: o.uid,
    gid: o.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a terminal's Ctrl-C must not stop the database or Temporal before the
    // api and worker (which still use them) have drained; our stop() decides the order.
    detached: true,
  });
  const maxLines = o.tailLines ?? 60;
  const lines: string[] = [];
  const onOutput = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.trim()) continue;
        lines.push(line);
        if (lines.length > maxLines) lines.shift();
        o.log.debug({ service: o.name }, line);
      }
    });
  };
  onOutput(child.stdout!);
  onOutput(child.stderr!);

  let spawnError: Error | null = null;
  const killOnExit = () => {
    try {
      child.kill(o.exitSignal);
    } catch {
      // already gone
    }
  };
  process.on('exit', killOnExit);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      lines.push(`spawn ${cmd} failed: ${err.message}`);
      process.off('exit', killOnExit);
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => (done = true));

  return {
    pid: child.pid ?? -1,
    exited,
    running: () => !done && !spawnError,
    tail: () => lines.join('\n'),
    async stop(signal, timeoutMs) {
      if (done) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The command line of a live process, or null (gone, or not ours to see). */
export function commandLineOf(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() || null;
  } catch {
    if (process.platform === 'linux') return null;
  }
  const r = spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || null : null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Signals `pid` and waits (polling: it is not our child) until it is gone or `timeoutMs` passed. */
export async function terminate(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  try {
    process.kill(pid, signal);
  } catch {
    return true;
  }
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}
