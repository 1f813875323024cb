// The product, in the test process: the real API (listening on a free port) and a real worker
// on a task queue of its own, against the run's Postgres, Temporal dev server and MQTT broker.
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { buildApp } from '../../api/app';
import { ephemeralSigner, firmwareDeps } from '../../api/firmware-deps';
import { DEFAULT_EXPORT_LIMITS, type ExportLimits } from '../../api/exports';
import { DEFAULT_SERVER_LIMITS, listen, type ServerLimits } from '../../api/http/server';
import { DeviceRequests } from '../../api/device-requests';
import { connectMqtt } from '../../runtime/mqtt-client';
import { mqttPublisher } from '../../runtime/device-publisher';
import { CredentialDeriver, newApiToken, sha256Hex } from '../../domain/credentials';
import { newEntityId } from '../../domain/ids';
import { createDb, type Db } from '../../db/knex';
import { insertToken } from '../../db/repositories/tokens';
import { insertUser } from '../../db/repositories/users';
import { insertCompany, upsertParticipation } from '../../db/repositories/companies';
import { ensureBootstrapAdmin } from '../../api/bootstrap-admin';
import type { AppLimits } from '../../api/app';
import type { CompanyRole } from '../../domain/roles';
import { createLogger } from '../../runtime/logger';
import { createWorker } from '../../worker/create-worker';
import { testEnv } from './env';
import { testCredentialStore } from './broker';
import { platformLogin } from '../../broker/stores';

let runtimeInstalled = false;

export interface Stack {
  baseUrl: string;
  db: Db;
  temporal: Client;
  taskQueue: string;
  credentials: CredentialDeriver;
  /** ADMIN_TOKEN: the platform admin. */
  adminToken: string;
  /** A company of this stack's own: where token() and member() callers sit by default. */
  companyId: string;
  /** An API token of a fresh member of the stack's company with that role. */
  token(role: CompanyRole): Promise<string>;
  /** A fresh user with that role in a company (default: the stack's), and an API token of theirs. */
  member(role: CompanyRole, companyId?: string): Promise<Caller>;
  /** A fresh user of no company (an end user, a device owner), and an API token of theirs. */
  endUser(): Promise<Caller>;
  /** A fresh company. */
  company(name?: string): Promise<string>;
  /** Starts the in-process worker (started by default). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  api(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<Response>;
  stop(): Promise<void>;
  /** The public key the API signs firmware with (a key of this stack's own). */
  firmwarePublicKey: string;
}

export interface StackOptions {
  worker?: boolean;
  bulkWaitMs?: number;
  acceptWaitMs?: number;
  replyTimeoutMs?: number;
  /** The HTTP server's limits (api/http/server.ts), as api/main.ts sets them from the configuration. */
  server?: Partial<ServerLimits>;
  exports?: Partial<ExportLimits>;
  /** A database of the test file's own (default: the suite's shared one). */
  databaseUrl?: string;
  signup?: 'open' | 'closed';
  sessionTtlS?: number;
  auth?: AppLimits['auth'];
  signIn?: AppLimits['signIn'];
  signUp?: AppLimits['signUp'];
  passwords?: AppLimits['passwords'];
  /** FIRMWARE_MAX_BYTES for uploads (default the product's). */
  firmwareMaxBytes?: number;
}

export interface Caller {
  userId: string;
  email: string;
  /** An API token of theirs, acting with all their rights. */
  token: string;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const env = testEnv();
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'test');
  const db = createDb(opts.databaseUrl ?? env.databaseUrl);
  const credentials = new CredentialDeriver(Buffer.from(env.deviceSecretKey));
  const connection = await Connection.connect({ address: env.temporalAddress });
  const temporal = new Client({ connection, namespace: 'default' });
  const taskQueue = `test-${randomBytes(6).toString('hex')}`;
  const adminToken = newApiToken();

  // Users made here have no password (they call with API tokens); tests of sign-in make their own.
  async function endUser(): Promise<Caller> {
    const id = newEntityId();
    const email = `${id.toLowerCase()}@test.invalid`;
    await insertUser(db, { id, email, passwordHash: null, createdBy: 'test' });
    const t = newApiToken();
    await insertToken(db, { id: newEntityId(), name: 'test', tokenHash: sha256Hex(t), userId: id });
    return { userId: id, email, token: t };
  }
  async function company(name = 'test company'): Promise<string> {
    return (await insertCompany(db, { id: newEntityId(), name, createdBy: 'test' })).id;
  }
  await ensureBootstrapAdmin(db, os.tmpdir(), adminToken);
  const companyId = await company('stack company');
  async function member(role: CompanyRole, inCompany = companyId): Promise<Caller> {
    const c = await endUser();
    await upsertParticipation(db, { id: newEntityId(), companyId: inCompany, userId: c.userId, role, createdBy: 'test' });
    return c;
  }
  const token = async (role: CompanyRole) => (await member(role)).token;

  const mqtt = connectMqtt(env.brokerUrl, 'test-api', platformLogin(credentials, 'rdm-api'));
  await new Promise<void>((resolve, reject) => {
    mqtt.once('connect', () => resolve());
    setTimeout(() => reject(new Error(`no MQTT broker at ${env.mqttUrl}`)), 10_000).unref();
  });
  const devices = new DeviceRequests(mqtt);

  const firmwareDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-test-firmware-'));
  const firmwareSigner = ephemeralSigner();
  const app = buildApp({
    db,
    temporal,
    taskQueue,
    credentials,
    log,
    adminToken,
    signup: opts.signup,
    sessionTtlS: opts.sessionTtlS,
    bulkWaitMs: opts.bulkWaitMs,
    acceptWaitMs: opts.acceptWaitMs,
    devices,
    replyTimeoutMs: opts.replyTimeoutMs,
    publicMqttUrl: env.brokerUrl,
    firmware: firmwareDeps({ db, credentials, dir: firmwareDir, signer: firmwareSigner, maxBytes: opts.firmwareMaxBytes }),
    readiness: [
      { name: 'postgres', check: async () => void (await db.raw('select 1')) },
      { name: 'temporal', check: async () => void (await connection.workflowService.getSystemInfo({})) },
    ],
  }, { exports: { ...DEFAULT_EXPORT_LIMITS, ...opts.exports }, auth: opts.auth, signIn: opts.signIn, signUp: opts.signUp, passwords: opts.passwords });
  const server: Server = await listen(app, 0, '127.0.0.1', { ...DEFAULT_SERVER_LIMITS, ...opts.server });
  const port = (server.address() as { port: number }).port;
  const baseUrl = `http://127.0.0.1:${port}`;

  let worker: { w: Worker; running: Promise<void>; conn: NativeConnection } | null = null;
  async function startWorker() {
    if (worker) return;
    const conn = await NativeConnection.connect({ address: env.temporalAddress });
    const w = await createWorker({ connection: conn, namespace: 'default', taskQueue, db, temporal, credentials, broker: testCredentialStore(), publisher: mqttPublisher(mqtt), firmwareBaseUrl: baseUrl, workflowBundle: { codePath: env.workflowBundlePath } });
    worker = { w, conn, running: w.run() };
  }
  async function stopWorker() {
    if (!worker) return;
    const { w, running, conn } = worker;
    worker = null;
    w.shutdown();
    await running;
    await conn.close();
  }
  if (opts.worker !== false) await startWorker();

  return {
    baseUrl,
    db,
    temporal,
    taskQueue,
    credentials,
    adminToken,
    companyId,
    token,
    member,
    endUser,
    company,
    startWorker,
    stopWorker,
    firmwarePublicKey: firmwareSigner.publicKeyPem,
    api(path, init = {}) {
      const { token: tok = adminToken, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (tok) headers.set('authorization', `Bearer ${tok}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(baseUrl + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
    },
    async stop() {
      await stopWorker();
      // Closing waits for every connection to end: drop idle keep-alive ones at once, or a stop
      // waits out the keep-alive timeout (65 s) of a connection some client left open.
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      devices.close();
      await mqtt.endAsync(true);
      // A stopped worker's cancelled fan-out may leave a workflow start in the client's retry
      // loop on a loaded machine; closing the channel under it throws from its retry timer, which
      // fails the test file. So the channel closes a little later (unref: it holds nothing open).
      setTimeout(() => void connection.close().catch(() => undefined), 30_000).unref();
      await db.destroy();
      fs.rmSync(firmwareDir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
