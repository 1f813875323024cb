// Downloads cannot take the database away from everyone else: clients that request a large batch's
// devices.csv and stop reading hold no pooled connection, are cut off after the stall timeout, and
// beyond EXPORT_CONCURRENCY are told to come back later. A pool that is exhausted anyway answers 503.
import http from 'node:http';
import { newDeviceId, newEntityId } from '../domain/ids';
import { insertBatch, recordDevicesCreated } from '../db/repositories/batches';
import { insertDevices } from '../db/repositories/devices';
import { eventually, startStack, type Stack } from './support/stack';

const STALLED = 12; // more than the pool's 10 connections
const STALL_TIMEOUT_MS = 2_000;
const DEVICES = 20_000;

let s: Stack;
let batchId: string;

beforeAll(async () => {
  s = await startStack({ worker: false, exports: { concurrency: STALLED, stallTimeoutMs: 600_000 } });
  // Written straight to Postgres (as the provisioning activities would): the workflow path is not
  // what is tested here, and 20,000 devices through it would take minutes on a busy machine.
  batchId = newEntityId();
  // ~1 KB of info per row: each CSV is ~25 MB, far more than the socket buffers can swallow.
  await insertBatch(s.db, { id: batchId, name: 'big export', count: DEVICES, info: 'x'.repeat(1000), color: null, model: 'TH-200', companyId: null, createdBy: null });
  for (let from = 0; from < DEVICES; from += 5_000) {
    const devices = Array.from({ length: 5_000 }, (_, i) => ({ id: newDeviceId(), seq: from + i, secretHash: `s${from + i}`, pairingCodeHash: `p${from + i}` }));
    await insertDevices(s.db, { id: batchId, model: 'TH-200', companyId: null }, devices);
  }
  await recordDevicesCreated(s.db, batchId, DEVICES, true);
}, 120_000);
afterAll(() => s.stop());

interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  res: http.IncomingMessage;
  req: http.ClientRequest;
  /** Resolves when the response is over: true when it arrived whole, false when it was cut short. */
  ended: Promise<boolean>;
}

/** Requests the batch's CSV and reads nothing past the headers. */
function stalledDownload(on: Stack = s, file = 'devices.csv'): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${on.baseUrl}/api/v1/batches/${batchId}/${file}`, { agent: false, headers: { authorization: `Bearer ${on.adminToken}` } }, (res) => {
      res.pause();
      res.on('error', () => undefined);
      const ended = new Promise<boolean>((done) => res.on('close', () => done(res.complete)));
      resolve({ status: res.statusCode!, headers: res.headers, res, req, ended });
    });
    req.on('error', reject);
    req.on('response', () => req.on('error', () => undefined));
  });
}

/** Reads the rest of a paused download; true when it arrived whole, false when the server cut it. */
function finish(d: Download): Promise<boolean> {
  d.res.resume();
  return d.ended;
}

describe('downloads and the connection pool', () => {
  it('keeps the API answering while more clients than the pool has stop reading', async () => {
    const stalled = await Promise.all(Array.from({ length: STALLED }, () => stalledDownload()));
    try {
      expect(stalled.map((d) => d.status)).toEqual(Array(STALLED).fill(200));
      // Every database-backed request still gets a connection (the stall timeout here is long:
      // it is not what frees them).
      expect((await s.api('/api/v1/batches')).status).toBe(200);
      expect((await s.api(`/api/v1/batches/${batchId}`)).status).toBe(200);
      expect((await s.api('/api/v1/devices?limit=5')).status).toBe(200);

      // One download more than EXPORT_CONCURRENCY: 503, come back later.
      for (const file of ['devices.csv', 'bundle.zip']) {
        const extra = await s.api(`/api/v1/batches/${batchId}/${file}`);
        expect(extra.status).toBe(503);
        expect(extra.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(extra.headers.get('content-disposition')).toBeNull();
        expect(((await extra.json()) as { error: { code: string } }).error.code).toBe('unavailable');
      }
      stalled.shift()!.req.destroy(); // a client that hangs up gives its place back
      await eventually(async () => {
        const probe = await stalledDownload();
        probe.req.destroy();
        return probe.status === 200;
      }, 30_000, 100);
    } finally {
      for (const d of stalled) d.req.destroy();
    }
  }, 120_000);

  it('cuts off a client that stops reading after the stall timeout', async () => {
    const short = await startStack({ worker: false, exports: { concurrency: 2, stallTimeoutMs: STALL_TIMEOUT_MS } });
    const stalled: Download[] = [];
    try {
      stalled.push(await stalledDownload(short), await stalledDownload(short)); // (a zip of this batch is small enough for the socket buffers)
      expect(stalled.map((d) => d.status)).toEqual([200, 200]);
      // Their places come free although neither client hung up...
      await eventually(async () => {
        const probe = await stalledDownload(short);
        probe.req.destroy();
        return probe.status === 200;
      }, 60_000, 250);
      await new Promise((r) => setTimeout(r, 2 * STALL_TIMEOUT_MS)); // (both stalled at about the same time)
      // ...because the server cut their downloads short.
      expect(await Promise.all(stalled.map(finish))).toEqual([false, false]);
    } finally {
      for (const d of stalled) d.req.destroy();
      await short.stop();
    }
  }, 180_000);

  it('streams a download whole to a client that reads', async () => {
    const r = await s.api(`/api/v1/batches/${batchId}/devices.csv`);
    expect(r.status).toBe(200);
    const lines = (await r.text()).split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(DEVICES + 1);
    expect(new Set(lines.slice(1).map((l) => l.slice(0, 14))).size).toBe(DEVICES); // "ID", each once
  }, 120_000);

  it('answers 503 unavailable, not 500, when no pooled connection frees up in time', async () => {
    const client = s.db.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void>; pool: { max: number } };
    const held = await Promise.all(Array.from({ length: client.pool.max }, () => client.acquireConnection()));
    try {
      const r = await s.api('/api/v1/batches');
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    } finally {
      await Promise.all(held.map((c) => client.releaseConnection(c)));
    }
    expect((await s.api('/api/v1/batches')).status).toBe(200);
  }, 60_000);
});
