// Test support: a Mosquitto of the test's own, to kill and restart under a device (reconnect and
// offline tests cannot stop the run's shared broker).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../runtime/embedded/free-port';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class OwnBroker {
  private proc: ChildProcess | null = null;
  private readonly conf: string;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    persistent: boolean,
  ) {
    this.conf = path.join(dir, 'mosquitto.conf');
    // Started as root, Mosquitto switches to the `mosquitto` user, which cannot write a 0700
    // temp dir of root's: stay the user we are (ignored when not root).
    const persistence = persistent ? `persistence true\npersistence_location ${dir}${path.sep}\nuser ${os.userInfo().username}\n` : 'persistence false\n';
    fs.writeFileSync(
      this.conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n${persistence}log_dest file ${path.join(dir, 'mosquitto.log')}\nlog_type error\nlog_type warning\n`,
    );
  }

  /**
   * A port only (nothing listens until start()): a device can be started against a broker that is
   * down. `persistent` keeps retained messages across a graceful stop('SIGTERM') and start().
   */
  static async create(opts: { persistent?: boolean } = {}): Promise<OwnBroker> {
    return new OwnBroker(await freePort(), fs.mkdtempSync(path.join(os.tmpdir(), 'fw-mosquitto-')), opts.persistent ?? false);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    const proc = spawn(MOSQUITTO_BIN, ['-c', this.conf], { stdio: 'ignore' });
    this.proc = proc;
    const until = Date.now() + 10_000;
    while (!(await answers(this.port))) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}`);
      if (Date.now() > until) throw new Error('mosquitto did not listen within 10 s');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILL (default): the broker vanishes the way a crash or a network cut looks to a device.
   * SIGTERM: a clean shutdown (a persistent broker saves its retained messages). */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
