// Fetching an update's image: one HTTP(S) GET streamed into a sink (a file in the device's state
// directory, or memory for the fleet), resumed where it stopped with `Range: bytes=N-` when a
// connection breaks, retried with backoff a bounded number of times, and never taking more bytes
// than the request announced (a hostile or broken server cannot fill the device's flash).
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { backoffDelay, type BackoffOptions } from '../backoff';
import type { Rng } from '../models/rng';

/** Where the bytes go. `length` is where a resumed download starts. */
export interface DownloadSink {
  readonly length: number;
  write(chunk: Buffer): Promise<void>;
  /** Drops what is held: the server ignored the range, the download starts over. */
  reset(): Promise<void>;
}

/** The image in memory (the fleet): allocated at the first byte, `size` at most. */
export class MemorySink implements DownloadSink {
  private buf: Buffer | null = null;
  length = 0;

  constructor(readonly size: number) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.length + chunk.length > this.size) throw new Error('more bytes than the sink holds');
    this.buf ??= Buffer.allocUnsafe(this.size);
    chunk.copy(this.buf, this.length);
    this.length += chunk.length;
  }

  async reset(): Promise<void> {
    this.length = 0;
  }

  bytes(): Buffer {
    return this.buf ? this.buf.subarray(0, this.length) : Buffer.alloc(0);
  }

  /** Frees the memory (after install, or a failure). */
  release(): void {
    this.buf = null;
    this.length = 0;
  }
}

/** The image in a file: what is there already (a download cut by a reboot or power loss) is kept and resumed. */
export class FileSink implements DownloadSink {
  length: number;
  private fh: fs.promises.FileHandle | null = null;

  constructor(readonly file: string) {
    let size = 0;
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.length = size;
  }

  async write(chunk: Buffer): Promise<void> {
    this.fh ??= await fs.promises.open(this.file, 'a');
    await this.fh.write(chunk);
    this.length += chunk.length;
  }

  async reset(): Promise<void> {
    await this.close();
    await fs.promises.rm(this.file, { force: true });
    this.length = 0;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

export type DownloadErrorCode = 'download-failed' | 'size-mismatch';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  url: string;
  size: number;
  sink: DownloadSink;
  /** Sent as HTTP Basic auth to the URL's origin (never to another origin a redirect leads to). */
  auth?: { username: string; password: string } | null;
  onProgress?: (received: number, size: number) => void;
  /** Attempts in a row that bring no new byte before giving up. Default 5. */
  retries?: number;
  /** All attempts, progress or not. Default 50. */
  maxAttempts?: number;
  backoff?: Partial<BackoffOptions>;
  jitter?: Rng;
  /** An attempt that receives nothing for this long is abandoned (and retried). Default 30 s. */
  idleTimeoutMs?: number;
  maxRedirects?: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  /** Requests made (redirects not counted). */
  attempts: number;
  /** The offset each request asked from: 0 is a whole GET, more is a `Range: bytes=N-`. */
  offsets: number[];
}

export const DOWNLOAD_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, factor: 2 };

/** An attempt that failed for a reason a new attempt may not have (network, 5xx). */
class Retryable extends Error {}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function get(url: URL, headers: Record<string, string>, o: DownloadOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, { method: 'GET', headers, signal: o.signal }, resolve);
    req.setTimeout(o.idleTimeoutMs ?? 30_000, () => req.destroy(new Retryable('no data within the idle timeout')));
    req.on('error', reject);
    req.end();
  });
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** Downloads `size` bytes of `url` into the sink, resuming what it holds. Rejects with DownloadError, or an AbortError. */
export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const { sink, size } = o;
  const retries = o.retries ?? 5;
  const maxAttempts = o.maxAttempts ?? 50;
  const backoff = { ...DOWNLOAD_BACKOFF, ...o.backoff };
  const jitter = o.jitter ?? Math.random;
  let origin: URL;
  try {
    origin = new URL(o.url);
  } catch {
    throw new DownloadError('download-failed', 'not a URL');
  }
  const result: DownloadResult = { attempts: 0, offsets: [] };
  let fruitless = 0; // attempts in a row without a new byte
  if (sink.length > size) await sink.reset(); // not this image's bytes
  while (sink.length < size) {
    if (o.signal?.aborted) throw abortError();
    if (result.attempts >= maxAttempts) throw new DownloadError('download-failed', `gave up after ${result.attempts} attempts`);
    const before = sink.length;
    result.attempts++;
    result.offsets.push(before);
    try {
      await attempt(origin, o, o.maxRedirects ?? 5);
    } catch (err) {
      if (o.signal?.aborted) throw abortError();
      if (err instanceof DownloadError) throw err;
      // Anything else is the network's doing (reset, refused, cut short, idle): try again.
      fruitless = sink.length > before ? 0 : fruitless + 1;
      if (fruitless > retries) throw new DownloadError('download-failed', `${(err as Error).message} (after ${result.attempts} attempts)`);
      await sleep(backoffDelay(Math.max(0, fruitless - 1), backoff, jitter), o.signal);
    }
  }
  return result;
}

async function attempt(origin: URL, o: DownloadOptions, redirectsLeft: number): Promise<void> {
  const { sink, size } = o;
  let url = origin;
  let res: IncomingMessage;
  const offset = sink.length;
  for (;;) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    // Always (harmless for a presigned URL), but only to the origin the platform named.
    if (o.auth && url.origin === origin.origin) headers.authorization = `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64')}`;
    res = await get(url, headers, o);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (redirectsLeft-- <= 0) throw new DownloadError('download-failed', 'too many redirects');
      url = new URL(res.headers.location, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DownloadError('download-failed', `redirected to ${url.protocol}`);
      continue;
    }
    break;
  }
  const status = res.statusCode ?? 0;
  const declared = res.headers['content-length'] === undefined ? null : Number(res.headers['content-length']);
  if (status === 200) {
    if (declared !== null && declared !== size) {
      res.destroy();
      throw new DownloadError('size-mismatch', `the server's image is ${declared} bytes, ${size} announced`);
    }
    if (offset > 0) await sink.reset(); // the range was ignored: the whole image comes again
  } else if (status === 206) {
    const m = CONTENT_RANGE.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== offset) {
      res.destroy();
      await sink.reset(); // a range we did not ask for: start over
      throw new Retryable(`206 with Content-Range ${JSON.stringify(res.headers['content-range'] ?? null)} for bytes=${offset}-`);
    }
    if (m[3] !== '*' && Number(m[3]) !== size) {
      res.destroy();
      throw new DownloadError('size-mismatch', `the server's image is ${m[3]} bytes, ${size} announced`);
    }
    if (Number(m[2]) >= size) {
      res.destroy();
      throw new DownloadError('size-mismatch', `the server's range ends at byte ${m[2]}, past ${size}`);
    }
  } else if (status === 416 && offset > 0) {
    res.resume();
    await sink.reset();
    throw new Retryable('416: the server refused the range');
  } else {
    res.resume();
    const message = `HTTP ${status}`;
    // 5xx, timeouts and throttling pass; anything else (401/403: an expired URL or a refused login, 404) will not.
    if (status >= 500 || status === 408 || status === 429) throw new Retryable(message);
    throw new DownloadError('download-failed', message);
  }
  const start = sink.length;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (sink.length + chunk.length > size) {
      res.destroy();
      throw new DownloadError('size-mismatch', `the server sent more than the ${size} bytes announced`);
    }
    await sink.write(chunk);
    o.onProgress?.(sink.length, size);
  }
  // The body ended cleanly (a cut connection throws above). Short of the image: for a 206 the
  // server may serve less than asked (the loop asks for the rest); a 200 that ends short is final.
  if (sink.length < size && (status === 200 || sink.length === start)) {
    throw new DownloadError('size-mismatch', `the server's image ended at ${sink.length} bytes, ${size} announced`);
  }
}
