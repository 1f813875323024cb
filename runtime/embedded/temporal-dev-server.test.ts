import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { captureLog } from './__fixtures__/capture-log';
import { freePort, portIsFree } from './free-port';
import { isAlive } from './managed-process';
import { findTemporalCli } from './temporal-cli';
import { ensureSearchAttributes, startTemporalDevServer, startTemporalViaSdk } from './temporal-dev-server';

const root = path.resolve(__dirname, '..', '..');
const cli = findTemporalCli(root);
const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function withConnection<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

async function customAttributes(address: string, namespace: string): Promise<Record<string, number>> {
  return withConnection(address, async (c) => {
    const res = await c.operatorService.listSearchAttributes({ namespace });
    return res.customAttributes as Record<string, number>;
  });
}

if (!cli) {
  // CI installs it (scripts/ensure-setup.js); the download fallback cannot work offline.
  process.stderr.write('temporal-dev-server.test.ts: no temporal CLI found (run `node scripts/ensure-setup.js --for-tests` or set TEMPORAL_CLI_PATH): skipped\n');
}
const describeWithCli = cli ? describe : describe.skip;

describeWithCli(`Temporal dev server (${cli})`, () => {
  test('in memory and headless: serves the namespace with our search attributes; stop frees the port', async () => {
    const port = await freePort();
    const log = captureLog();
    const t = Date.now();
    const server = await startTemporalDevServer({ root, dataDir: null, port, uiPort: await freePort(), namespace: 'rdm-mem', ui: false, log });
    const startMs = Date.now() - t;
    try {
      expect(server.address).toBe(`127.0.0.1:${port}`);
      expect(server.uiUrl).toBeNull();
      await withConnection(server.address, async (c) => {
        const ns = await c.workflowService.describeNamespace({ namespace: 'rdm-mem' });
        expect(ns.namespaceInfo?.name).toBe('rdm-mem');
        // Idempotent: everything is there already.
        expect(await ensureSearchAttributes(c, 'rdm-mem')).toEqual([]);
      });
      const attrs = await customAttributes(server.address, 'rdm-mem');
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(attrs[name]).toBe(KEYWORD);
    } finally {
      const s = Date.now();
      await server.stop();
      process.stdout.write(`temporal dev server (memory, headless): start ${startMs} ms, stop ${Date.now() - s} ms\n`);
    }
    await server.stop(); // idempotent
    expect(await portIsFree(port)).toBe(true);
  });

  test('on a SQLite file: namespace, attributes and a newly added attribute survive a restart; the UI answers', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-'));
    dirs.push(dataDir);
    const port = await freePort();
    const uiPort = await freePort();
    const opts = { root, dataDir, port, uiPort, namespace: 'rdm-file', log: captureLog() };

    let t = Date.now();
    const first = await startTemporalDevServer(opts);
    const firstMs = Date.now() - t;
    expect(first.uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
    expect((await fetch(first.uiUrl!)).status).toBe(200);
    expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'temporal.pid'))).toBe(true);
    // Registered on a live cluster, as the worker does against a real one.
    await withConnection(first.address, async (c) => {
      expect(await ensureSearchAttributes(c, 'rdm-file', { ...SEARCH_ATTRIBUTES, AddedLater: 'KEYWORD' })).toEqual(['AddedLater']);
    });
    t = Date.now();
    await first.stop();
    const stopMs = Date.now() - t;
    expect(fs.existsSync(path.join(dataDir, 'temporal.pid'))).toBe(false);

    t = Date.now();
    const second = await startTemporalDevServer(opts);
    const restartMs = Date.now() - t;
    try {
      const attrs = await customAttributes(second.address, 'rdm-file');
      for (const name of [...Object.keys(SEARCH_ATTRIBUTES), 'AddedLater']) expect(attrs[name]).toBe(KEYWORD);
    } finally {
      await second.stop();
    }
    process.stdout.write(`temporal dev server (SQLite file, UI): first start ${firstMs} ms, stop ${stopMs} ms, restart ${restartMs} ms\n`);
  });

  test('a restart on an existing database registers attributes the file lacks (start-dev flags do not)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-'));
    dirs.push(dataDir);
    const port = await freePort();
    const opts = { root, dataDir, port, uiPort: 0, namespace: 'rdm-upgrade', ui: false, log: captureLog() };
    const first = await startTemporalDevServer(opts);
    // Simulate a database from an older version of the product: one attribute less.
    await withConnection(first.address, (c) =>
      c.operatorService.removeSearchAttributes({ namespace: 'rdm-upgrade', searchAttributes: ['RolloutId'] }),
    );
    expect((await customAttributes(first.address, 'rdm-upgrade')).RolloutId).toBeUndefined();
    await first.stop();

    const log = captureLog();
    const second = await startTemporalDevServer({ ...opts, log });
    try {
      expect((await customAttributes(second.address, 'rdm-upgrade')).RolloutId).toBe(KEYWORD);
      expect(log.has('info', /registered search attributes missing/)).toBe(true);
    } finally {
      await second.stop();
    }
  });

  test('a server left running by a parent killed hard is stopped before a restart on the same file', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-'));
    dirs.push(dataDir);
    const port = await freePort();
    const opts = { root, dataDir, port, uiPort: 0, namespace: 'default', ui: false, log: captureLog() };
    const first = await startTemporalDevServer(opts);
    const stalePid = Number(fs.readFileSync(path.join(dataDir, 'temporal.pid'), 'utf8'));
    // As if this process had died without stopping it: forget the handle, keep the pid file.
    const log = captureLog();
    const second = await startTemporalDevServer({ ...opts, log });
    try {
      expect(log.has('warn', /from a previous run still uses this database/)).toBe(true);
      expect(isAlive(stalePid)).toBe(false);
    } finally {
      await second.stop();
      await first.stop(); // already gone: resolves
    }
  });

  test('the fallback through @temporalio/testing passes the same settings (here with the local binary, as it cannot download)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-sdk-'));
    dirs.push(dataDir);
    const port = await freePort();
    const uiPort = await freePort();
    const t = Date.now();
    const server = await startTemporalViaSdk({ root, dataDir, port, uiPort, namespace: 'rdm-sdk', log: captureLog() }, { type: 'existing-path', path: cli! });
    const startMs = Date.now() - t;
    try {
      expect(server.address).toBe(`127.0.0.1:${port}`);
      expect((await fetch(server.uiUrl!)).status).toBe(200);
      expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
      const attrs = await customAttributes(server.address, 'rdm-sdk');
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(attrs[name]).toBe(KEYWORD);
    } finally {
      await server.stop();
    }
    process.stdout.write(`temporal dev server via @temporalio/testing (SQLite file, UI): start ${startMs} ms\n`);
  });

  test('a taken port is a clear error', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      await expect(startTemporalDevServer({ root, port, uiPort: 0, namespace: 'default', ui: false, log: captureLog() })).rejects.toThrow(
        /gRPC port 127\.0\.0\.1:\d+ is already in use/,
      );
    } finally {
      blocker.close();
    }
  });
});

test('a server that exits at start-up is reported with its output', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-bad-'));
  dirs.push(dir);
  const fake = path.join(dir, 'temporal');
  fs.writeFileSync(fake, '#!/bin/sh\necho "Error: unknown flag: --nonsense" >&2\nexit 3\n', { mode: 0o755 });
  const before = process.env.TEMPORAL_CLI_PATH;
  process.env.TEMPORAL_CLI_PATH = fake;
  try {
    await expect(startTemporalDevServer({ root, port: await freePort(), uiPort: 0, namespace: 'default', ui: false, log: captureLog() })).rejects.toThrow(
      /did not start: it exited early \(exit code 3\); its output:\nError: unknown flag: --nonsense/,
    );
  } finally {
    if (before === undefined) delete process.env.TEMPORAL_CLI_PATH;
    else process.env.TEMPORAL_CLI_PATH = before;
  }
});
