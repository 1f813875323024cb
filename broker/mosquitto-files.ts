// Device logins in the embedded Mosquitto: a password file plus one ACL pattern, reloaded with
// SIGHUP. Chosen over the dynamic-security plugin by measurement (docs/broker.md): at 100,000
// devices Mosquitto 2.0.11's plugin rewrites its whole JSON file after every single command, while
// the password file is rewritten once per change set; a reload cuts off a connection whose login
// was removed within milliseconds.
//
// Several processes (workers, tests) may write the file: a lock file serialises them, each write
// goes to a temporary file renamed into place, and a write counts as done only when the broker has
// reloaded it, which a probe login with a fresh password per write proves.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { mosquittoAcl } from '../domain/broker-identity';
import type { CredentialStore, MqttLogin } from './credential-store';

export const PASSWORD_FILE = 'passwd';
export const ACL_FILE = 'acl';
export const PID_FILE = 'mosquitto.pid';
const LOCK_FILE = 'passwd.lock';
/** A login with no rights whose password changes on every write: accepted means reloaded. */
export const PROBE_USERNAME = 'rdm-reload-probe';
/** A lock older than this belongs to a process that died holding it. */
const STALE_LOCK_MS = 30_000;

/** One password-file line: Mosquitto's salted SHA-512 (`$6$`). Secrets carry >= 128 random bits: no slow KDF needed. */
export function passwordLine(login: MqttLogin): string {
  if (/[:\s]/.test(login.username)) throw new Error(`an MQTT username cannot hold ':' or spaces: ${JSON.stringify(login.username)}`);
  const salt = randomBytes(12);
  const hash = createHash('sha512').update(login.password).update(salt).digest();
  return `${login.username}:$6$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** The password file's entries, username -> line. */
export function parsePasswordFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line);
  }
  return out;
}

/** The lines Mosquitto's configuration gets for authentication and ACLs in `dir`. */
export function mosquittoAuthConfig(dir: string): string[] {
  return ['allow_anonymous false', `password_file ${path.join(dir, PASSWORD_FILE)}`, `acl_file ${path.join(dir, ACL_FILE)}`, `pid_file ${path.join(dir, PID_FILE)}`];
}

/** Before Mosquitto starts: the ACL, and the password file with these logins (replacing it when `replace`). */
export function prepareMosquittoAuth(dir: string, logins: readonly MqttLogin[], opts: { replace: boolean }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ACL_FILE), mosquittoAcl());
  const file = path.join(dir, PASSWORD_FILE);
  const entries = opts.replace || !fs.existsSync(file) ? new Map<string, string>() : parsePasswordFile(fs.readFileSync(file, 'utf8'));
  for (const l of logins) entries.set(l.username, passwordLine(l));
  writeAtomically(file, entries);
}

function writeAtomically(file: string, entries: Map<string, string>): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, [...entries.values()].join('\n') + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, LOCK_FILE);
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS) fs.rmSync(lock, { force: true });
      } catch {
        // gone meanwhile
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

function probeOnce(url: string, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { username: PROBE_USERNAME, password, auth: undefined, reconnectPeriod: 0, connectTimeout: 2_000, protocolVersion: 4, clientId: `${PROBE_USERNAME}-${randomBytes(4).toString('hex')}` });
    const done = (ok: boolean) => {
      c.end(true);
      resolve(ok);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.once('close', () => done(false));
  });
}

export interface MosquittoFilesOptions {
  /** The directory of the broker's password, ACL and pid files. */
  dir: string;
  /** The broker's address, for the reload probe. */
  url: string;
  /** How long a write may wait for the broker to reload it. Default 15 s. */
  reloadTimeoutMs?: number;
}

export function mosquittoFilesStore(o: MosquittoFilesOptions): CredentialStore {
  const file = path.join(o.dir, PASSWORD_FILE);
  type Op = { put: readonly MqttLogin[]; remove: readonly string[]; resolve: () => void; reject: (err: Error) => void };
  let queue: Op[] = [];
  let running: Promise<void> | null = null;

  async function reload(probePassword: string): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(o.dir, PID_FILE), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no Mosquitto pid in ${path.join(o.dir, PID_FILE)}`);
    process.kill(pid, 'SIGHUP');
    const until = Date.now() + (o.reloadTimeoutMs ?? 15_000);
    while (!(await probeOnce(o.url, probePassword))) {
      if (Date.now() > until) throw new Error(`Mosquitto (pid ${pid}) did not reload its password file within ${o.reloadTimeoutMs ?? 15_000} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // Changes that arrive while a write is under way go into the next one together: a burst of
  // blocks costs one rewrite and one reload, not one each.
  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const ops = queue;
      queue = [];
      try {
        await withLock(o.dir, async () => {
          const entries = parsePasswordFile(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
          for (const op of ops) {
            for (const u of op.remove) entries.delete(u);
            for (const l of op.put) entries.set(l.username, passwordLine(l));
          }
          const probePassword = randomBytes(16).toString('hex');
          entries.set(PROBE_USERNAME, passwordLine({ username: PROBE_USERNAME, password: probePassword }));
          writeAtomically(file, entries);
          await reload(probePassword);
        });
        for (const op of ops) op.resolve();
      } catch (err) {
        for (const op of ops) op.reject(err as Error);
      }
    }
    running = null;
  }

  function submit(put: readonly MqttLogin[], remove: readonly string[]): Promise<void> {
    if (put.length === 0 && remove.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      queue.push({ put, remove, resolve, reject });
      running ??= drain();
    });
  }

  return {
    kind: 'mosquitto-files',
    put: (logins) => submit(logins, []),
    remove: (usernames) => submit([], usernames),
    close: async () => {
      await running;
    },
  };
}
