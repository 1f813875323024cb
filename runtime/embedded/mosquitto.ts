// Mosquitto as the embedded broker, when its binary is on this machine: it speaks MQTT 5 (shared
// subscriptions let N bridges split the device stream), which the aedes fallback does not.
// Tests start one per run too, so retained messages never leak between runs.
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { spawnManaged, type EmbeddedLog, type ManagedProcess } from './managed-process';
import { portIsFree } from './free-port';
import { mosquittoAuthConfig } from '../../broker/mosquitto-files';

const CANDIDATES = ['mosquitto', '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/opt/homebrew/sbin/mosquitto', '/usr/local/opt/mosquitto/sbin/mosquitto'];

/** The mosquitto binary to run (MOSQUITTO_BIN, PATH, usual sbin places), or null. */
export function findMosquitto(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const bin of env.MOSQUITTO_BIN ? [env.MOSQUITTO_BIN] : CANDIDATES) {
    const r = spawnSync(bin, ['-h'], { encoding: 'utf8', timeout: 5_000 });
    // `mosquitto -h` prints its version and exits 3; a missing binary gives ENOENT.
    if (!r.error && /mosquitto version \d/.test(`${r.stdout}${r.stderr}`)) return bin;
  }
  return null;
}

const DYNSEC_CANDIDATES = ['/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so', '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so', '/usr/lib/mosquitto_dynamic_security.so', '/usr/local/lib/mosquitto_dynamic_security.so', '/opt/homebrew/lib/mosquitto_dynamic_security.so'];

/** Mosquitto's dynamic-security plugin on this machine (MOSQUITTO_DYNSEC_PLUGIN, usual places), or null. */
export function findDynsecPlugin(env: NodeJS.ProcessEnv = process.env): string | null {
  return (env.MOSQUITTO_DYNSEC_PLUGIN ? [env.MOSQUITTO_DYNSEC_PLUGIN] : DYNSEC_CANDIDATES).find((p) => fs.existsSync(p)) ?? null;
}

export interface MosquittoOptions {
  bin: string;
  port: number;
  host?: string;
  /** Where its config (and, when persistent, its database) live. */
  dir: string;
  /** Keep retained messages and sessions across restarts (npm start); tests run without. */
  persistent: boolean;
  log: EmbeddedLog;
  /**
   * Per-device authentication and ACL from the password and ACL files in this directory
   * (broker/mosquitto-files.ts; prepareMosquittoAuth writes them first). Without it the broker
   * is anonymous: only tests of the broker itself want that.
   */
  authDir?: string;
  /** Authentication by the dynamic-security plugin instead: its library and configuration file (tests of MQTT_AUTH=dynsec). */
  dynsec?: { plugin: string; configFile: string };
  /** Extra lines for mosquitto.conf. */
  extraConfig?: string[];
}

export interface RunningMosquitto {
  url: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

function authConfig(o: Pick<MosquittoOptions, 'authDir' | 'dynsec'>): string[] {
  if (o.dynsec) return ['allow_anonymous false', `plugin ${o.dynsec.plugin}`, `plugin_opt_config_file ${o.dynsec.configFile}`];
  return o.authDir ? mosquittoAuthConfig(o.authDir) : ['allow_anonymous true'];
}

export function mosquittoConfig(o: Pick<MosquittoOptions, 'port' | 'host' | 'dir' | 'persistent' | 'extraConfig' | 'authDir' | 'dynsec'>): string {
  return [
    `listener ${o.port} ${o.host ?? '127.0.0.1'}`,
    ...authConfig(o),
    // Nagle + delayed ACKs would add ~40 ms to small request/response exchanges (set, commands).
    'set_tcp_nodelay true',
    // A bridge that restarts must find every QoS 1 message waiting for it (the default, 1000, drops).
    // Not 0 ("no limit"): with 0, Mosquitto 2.0.11 stops acknowledging a client's QoS 1 publishes
    // after the ACL denied one of them (measured); the byte limit below bounds the queue anyway.
    'max_queued_messages 100000000',
    'max_queued_bytes 1073741824',
    'max_inflight_messages 0',
    'max_keepalive 600',
    ...(o.persistent ? ['persistence true', `persistence_location ${o.dir}${path.sep}`, 'autosave_interval 60'] : ['persistence false']),
    // Started as root, Mosquitto switches to user "mosquitto", who cannot write our data dir.
    `user ${os.userInfo().username}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(o.extraConfig ?? []),
  ].join('\n') + '\n';
}

function answers(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(o: MosquittoOptions): Promise<RunningMosquitto> {
  const host = o.host ?? '127.0.0.1';
  if (!(await portIsFree(o.port, host))) {
    throw new Error(`cannot start Mosquitto: ${host}:${o.port} is already in use (set MQTT_PORT, or MQTT_URL to use that broker)`);
  }
  fs.mkdirSync(o.dir, { recursive: true });
  const conf = path.join(o.dir, 'mosquitto.conf');
  fs.writeFileSync(conf, mosquittoConfig(o));
  const proc = spawnManaged(o.bin, ['-c', conf], { name: 'mosquitto', log: o.log, exitSignal: 'SIGTERM' });
  const until = Date.now() + 10_000;
  while (!(await answers(o.port, host))) {
    if (!proc.running()) throw new Error(`Mosquitto exited at start:\n${proc.tail()}`);
    if (Date.now() > until) {
      await proc.stop('SIGKILL', 1_000);
      throw new Error(`Mosquitto did not listen on ${host}:${o.port} within 10 s:\n${proc.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  o.log.info({ host, port: o.port, pid: proc.pid }, 'embedded Mosquitto running');
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `mqtt://${urlHost}:${o.port}`,
    port: o.port,
    process: proc,
    stop: () => proc.stop('SIGTERM', 5_000),
  };
}
