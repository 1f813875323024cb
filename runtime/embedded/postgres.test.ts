import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { captureLog } from './__fixtures__/capture-log';
import { freePort } from './free-port';
import { isAlive } from './managed-process';
import { hydrateSymlinks, pgBinaries, startEmbeddedPostgres } from './postgres';

const root = path.resolve(__dirname, '..', '..');
const dirs: string[] = [];
const children: ChildProcess[] = [];

/** A data directory the (non-root) postgres user can reach: mkdtemp makes it 0700. */
function tempDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-embedded-pg-'));
  fs.chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('initialises the cluster once, creates the rdm database, and a restart reuses the data', async () => {
  const dataDir = tempDataDir();
  const port = await freePort();
  const log = captureLog();

  let t = Date.now();
  const first = await startEmbeddedPostgres({ dataDir, port, log });
  const firstMs = Date.now() - t;
  expect(first.url).toBe(`postgres://postgres:postgres@127.0.0.1:${port}/rdm`);
  expect(log.has('info', /initialised a new PostgreSQL cluster/)).toBe(true);
  expect(await query(first.url, 'SELECT current_database() AS db')).toEqual([{ db: 'rdm' }]);
  await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives a restart')");
  await first.stop();
  await first.stop(); // idempotent
  expect(fs.existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
  expect(fs.existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  expect(fs.existsSync(path.join(dataDir, 'postgres.initdb'))).toBe(false);

  const log2 = captureLog();
  t = Date.now();
  const second = await startEmbeddedPostgres({ dataDir, port, log: log2 });
  const secondMs = Date.now() - t;
  try {
    expect(log2.has('info', /initialised/)).toBe(false);
    expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives a restart' }]);
  } finally {
    await second.stop();
  }
  process.stdout.write(`embedded postgres: first start (initdb) ${firstMs} ms, restart ${secondMs} ms\n`);
});

test('after the parent is killed with SIGKILL, the server goes too and the next start works', async () => {
  const dataDir = tempDataDir();
  const port = await freePort();
  // `node --import tsx`, not the tsx CLI: that one runs the script in a second node process.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '__fixtures__', 'postgres-child.ts'), dataDir, String(port)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => reject(new Error(`fixture exited: ${out}`)));
  });
  const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
  const serverPid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  expect(isAlive(serverPid)).toBe(true);

  child.kill('SIGKILL');
  // setpriv --pdeathsig SIGINT: the kernel tells postgres, which shuts down cleanly by itself.
  for (let i = 0; i < 100 && isAlive(serverPid); i++) await new Promise((r) => setTimeout(r, 50));
  expect(isAlive(serverPid)).toBe(false);

  const again = await startEmbeddedPostgres({ dataDir, port, log: captureLog() });
  try {
    expect(await query(again.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  } finally {
    await again.stop();
  }
}, 60_000);

test('a postgres orphaned by an earlier run (no parent-death signal) is stopped and replaced', async () => {
  const dataDir = tempDataDir();
  const port = await freePort();
  const first = await startEmbeddedPostgres({ dataDir, port, log: captureLog() });
  await first.stop();

  // What a run on a system without setpriv leaves behind after a kill -9: a detached postgres.
  const pgDir = path.join(dataDir, 'postgres');
  const { uid, gid } = fs.statSync(pgDir);
  const orphan = spawn(pgBinaries().postgres, ['-D', pgDir, '-p', String(port), '-h', '127.0.0.1', '-k', ''], {
    uid: process.getuid?.() === 0 ? uid : undefined,
    gid: process.getuid?.() === 0 ? gid : undefined,
    stdio: 'ignore',
    detached: true,
  });
  children.push(orphan);
  for (let i = 0; i < 100 && !fs.existsSync(path.join(pgDir, 'postmaster.pid')); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300)); // listening

  const log = captureLog();
  const pgServer = await startEmbeddedPostgres({ dataDir, port, log });
  try {
    expect(log.has('warn', /still serves this data directory/)).toBe(true);
    expect(orphan.exitCode !== null || orphan.signalCode !== null || !isAlive(orphan.pid!)).toBe(true);
    expect(await query(pgServer.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  } finally {
    await pgServer.stop();
  }
}, 60_000);

test('a postmaster.pid whose pid now belongs to another program is removed', async () => {
  const dataDir = tempDataDir();
  const port = await freePort();
  const first = await startEmbeddedPostgres({ dataDir, port, log: captureLog() });
  await first.stop();
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(sleeper);
  const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
  fs.writeFileSync(pidFile, `${sleeper.pid}\n${path.join(dataDir, 'postgres')}\n0\n${port}\n\n127.0.0.1\n 0 0\nready\n`);

  const log = captureLog();
  const pgServer = await startEmbeddedPostgres({ dataDir, port, log });
  try {
    expect(log.has('info', /belongs to another program/)).toBe(true);
    expect(isAlive(sleeper.pid!)).toBe(true); // not ours to kill
  } finally {
    await pgServer.stop();
    sleeper.kill();
  }
});

(process.getuid?.() === 0 ? test : test.skip)('as root: a data directory owned by root (e.g. copied) is given back to the postgres user', async () => {
  const dataDir = tempDataDir();
  const port = await freePort();
  await (await startEmbeddedPostgres({ dataDir, port, log: captureLog() })).stop();
  const pgDir = path.join(dataDir, 'postgres');
  expect(spawnSync('chown', ['-R', 'root:root', pgDir]).status).toBe(0);
  fs.chmodSync(pgDir, 0o755);

  const log = captureLog();
  const again = await startEmbeddedPostgres({ dataDir, port, log });
  try {
    expect(log.has('warn', /giving the PostgreSQL data directory/)).toBe(true);
    expect(fs.statSync(pgDir).mode & 0o777).toBe(0o700);
    expect(await query(again.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  } finally {
    await again.stop();
  }
});

(process.getuid?.() === 0 ? test : test.skip)('as root: a data directory the postgres user cannot reach is a clear error', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-embedded-pg-')); // 0700 root
  dirs.push(dataDir);
  await expect(startEmbeddedPostgres({ dataDir, port: await freePort(), log: captureLog() })).rejects.toThrow(/cannot reach the data directory/);
});

test('a data directory that is not a cluster is refused, not overwritten', async () => {
  const dataDir = tempDataDir();
  fs.mkdirSync(path.join(dataDir, 'postgres'));
  fs.writeFileSync(path.join(dataDir, 'postgres', 'precious.txt'), 'keep me');
  await expect(startEmbeddedPostgres({ dataDir, port: await freePort(), log: captureLog() })).rejects.toThrow(/holds no PostgreSQL cluster/);
  expect(fs.readFileSync(path.join(dataDir, 'postgres', 'precious.txt'), 'utf8')).toBe('keep me');
});

test('a taken port is a clear error', async () => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const { port } = blocker.address() as net.AddressInfo;
  try {
    await expect(startEmbeddedPostgres({ dataDir: tempDataDir(), port, log: captureLog() })).rejects.toThrow(/127\.0\.0\.1:\d+ is already in use/);
  } finally {
    blocker.close();
  }
});

test('hydrateSymlinks recreates the library symlinks the postinstall script would have made, once', () => {
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-pg-pkg-'));
  dirs.push(pkg);
  const native = path.join(pkg, 'native');
  fs.mkdirSync(path.join(native, 'lib'), { recursive: true });
  fs.mkdirSync(path.join(native, 'bin'));
  fs.writeFileSync(path.join(native, 'lib', 'libpq.so.5.18'), 'lib');
  fs.writeFileSync(path.join(native, 'bin', 'postgres'), '#!/bin/sh\n', { mode: 0o644 });
  fs.writeFileSync(
    path.join(native, 'pg-symlinks.json'),
    JSON.stringify([
      { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so' },
      { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so.5' },
    ]),
  );
  const log = captureLog();
  expect(hydrateSymlinks(native, log)).toBe(2);
  expect(fs.readlinkSync(path.join(native, 'lib', 'libpq.so.5'))).toBe('libpq.so.5.18');
  expect(fs.readFileSync(path.join(native, 'lib', 'libpq.so.5'), 'utf8')).toBe('lib');
  expect(fs.statSync(path.join(native, 'bin', 'postgres')).mode & 0o555).toBe(0o555);
  expect(hydrateSymlinks(native, log)).toBe(0);
});

test('the installed binaries run (their library symlinks are in place)', () => {
  const { postgres, initdb, nativeDir } = pgBinaries();
  hydrateSymlinks(nativeDir, captureLog());
  for (const bin of [postgres, initdb]) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/PostgreSQL\) \d+/);
  }
});
