// The image download against a real local HTTP server: resume by Range, the bound on bytes, the
// retries and what is not retried, the credentials only for the URL's own origin.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildTestImage } from '../../domain/ota';
import { ImageServer } from '../testing/image-server';
import { download, DownloadError, FileSink, MemorySink } from './download';

const FAST = { retries: 3, backoff: { initialMs: 10, maxMs: 40 }, idleTimeoutMs: 2_000 };
const image = buildTestImage({ version: '2.0.0', size: 256 * 1024 });
let server: ImageServer;

beforeEach(async () => {
  server = await ImageServer.start();
});

afterEach(async () => {
  await server.close();
});

it('resumes a cut download with Range: bytes=N- and gets the exact image', async () => {
  const url = server.serve('/fw', { bytes: image, cutFirstAfter: 100_000 });
  const sink = new MemorySink(image.length);
  const seen: number[] = [];
  const r = await download({ url, size: image.length, sink, onProgress: (n) => seen.push(n), ...FAST });
  expect(sink.bytes().equals(image)).toBe(true);
  const reqs = server.requestsFor('/fw');
  expect(reqs.map((q) => q.range)).toEqual([undefined, 'bytes=100000-']);
  expect(reqs.map((q) => q.status)).toEqual([200, 206]);
  expect(r).toEqual({ attempts: 2, offsets: [0, 100_000] });
  expect(seen.at(-1)).toBe(image.length);
  expect(seen.every((n, i) => i === 0 || n >= seen[i - 1]!)).toBe(true);
});

it('resumes what a file already holds (a download cut by a power loss)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-dl-'));
  try {
    const file = path.join(dir, 'part');
    fs.writeFileSync(file, image.subarray(0, 5_000));
    const url = server.serve('/fw', { bytes: image });
    const sink = new FileSink(file);
    await download({ url, size: image.length, sink, ...FAST });
    await sink.close();
    expect(fs.readFileSync(file).equals(image)).toBe(true);
    expect(server.requestsFor('/fw').map((q) => q.range)).toEqual(['bytes=5000-']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('starts over when the server ignores the range (200 to a Range request)', async () => {
  const url = server.serve('/fw', { bytes: image, cutFirstAfter: 50_000, ignoreRange: true });
  const sink = new MemorySink(image.length);
  await download({ url, size: image.length, sink, ...FAST });
  expect(sink.bytes().equals(image)).toBe(true);
  expect(server.requestsFor('/fw').map((q) => [q.range, q.status])).toEqual([
    [undefined, 200],
    ['bytes=50000-', 200],
  ]);
});

it('never takes more bytes than announced, nor fewer', async () => {
  const url = server.serve('/fw', { bytes: image });
  // Announced smaller: the Content-Length says so before a byte is taken.
  await expect(download({ url, size: image.length - 1, sink: new MemorySink(image.length - 1), ...FAST })).rejects.toMatchObject({ code: 'size-mismatch' });
  await expect(download({ url, size: image.length + 1, sink: new MemorySink(image.length + 1), ...FAST })).rejects.toMatchObject({ code: 'size-mismatch' });

  // A server that sends no length and just keeps going is cut at the announced size.
  const endless = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked, no length
    const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024, 1)), 1);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
  try {
    const sink = new MemorySink(100_000);
    const err = await download({ url: `http://127.0.0.1:${(endless.address() as AddressInfo).port}/`, size: 100_000, sink, ...FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('size-mismatch');
    expect(sink.length).toBeLessThanOrEqual(100_000);
  } finally {
    endless.closeAllConnections();
    await new Promise((resolve) => endless.close(resolve));
  }
});

it('retries 503s with backoff, gives up after the bounded retries, and does not retry a 404 or a 401', async () => {
  const url = server.serve('/flaky', { bytes: image, failFirst: 2 });
  const sink = new MemorySink(image.length);
  expect((await download({ url, size: image.length, sink, ...FAST })).attempts).toBe(3);

  const down = server.serve('/down', { bytes: image, failFirst: 1_000 });
  await expect(download({ url: down, size: image.length, sink: new MemorySink(image.length), ...FAST })).rejects.toMatchObject({ code: 'download-failed' });
  expect(server.requestsFor('/down')).toHaveLength(FAST.retries + 1);

  await expect(download({ url: `${server.base}/missing`, size: 10, sink: new MemorySink(10), ...FAST })).rejects.toMatchObject({ code: 'download-failed', message: 'HTTP 404' });
  expect(server.requestsFor('/missing')).toHaveLength(1);

  const locked = server.serve('/locked', { bytes: image, auth: { username: 'dev', password: 'pw' } });
  await expect(download({ url: locked, size: image.length, sink: new MemorySink(image.length), auth: { username: 'dev', password: 'nope' }, ...FAST })).rejects.toMatchObject({ message: 'HTTP 401' });
  const ok = new MemorySink(image.length);
  await download({ url: locked, size: image.length, sink: ok, auth: { username: 'dev', password: 'pw' }, ...FAST });
  expect(ok.bytes().equals(image)).toBe(true);
});

it("follows a redirect, and sends the device's credentials to the URL's origin only", async () => {
  const other = await ImageServer.start();
  try {
    const target = other.serve('/presigned', { bytes: image });
    const redirector = http.createServer((req, res) => {
      res.writeHead(302, { location: target });
      res.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const sink = new MemorySink(image.length);
      await download({ url: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/fw`, size: image.length, sink, auth: { username: 'dev', password: 'pw' }, ...FAST });
      expect(sink.bytes().equals(image)).toBe(true);
      expect(other.requestsFor('/presigned')[0]!.authorization).toBeUndefined();
    } finally {
      await new Promise((resolve) => redirector.close(resolve));
    }
  } finally {
    await other.close();
  }
});

it('stops at once when aborted, mid-body or between retries', async () => {
  const url = server.serve('/stall', { bytes: image, stallAfter: 10_000 });
  const abort = new AbortController();
  const sink = new MemorySink(image.length);
  const p = download({ url, size: image.length, sink, signal: abort.signal, ...FAST });
  while (sink.length < 10_000) await new Promise((r) => setTimeout(r, 5));
  abort.abort();
  await expect(p).rejects.toMatchObject({ name: 'AbortError' });
});
