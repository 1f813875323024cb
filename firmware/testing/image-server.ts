// Test support: a real local HTTP server standing in for the platform's firmware download, with
// the misbehaviours an update must survive: a connection cut after N bytes, a stall, a server that
// ignores Range, more bytes than announced, transient 503s, and HTTP Basic auth.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedImage {
  bytes: Buffer;
  /** The first request gets this many bytes, then the connection is cut. */
  cutFirstAfter?: number;
  /** Every request stops sending after this many bytes of the image (until release()). */
  stallAfter?: number;
  /** Answers 200 with the whole image even when asked for a range. */
  ignoreRange?: boolean;
  /** The first n requests are answered 503. */
  failFirst?: number;
  /** Required Basic auth (401 otherwise). */
  auth?: { username: string; password: string };
}

export interface SeenRequest {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

export class ImageServer {
  readonly requests: SeenRequest[] = [];
  private readonly images = new Map<string, ServedImage & { served: number }>();
  private readonly stalled = new Set<ServerResponse>();

  private constructor(private readonly server: http.Server) {
    server.on('request', (req, res) => this.handle(req, res));
  }

  static async start(): Promise<ImageServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ImageServer(server);
  }

  get base(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves the image under `path`; returns its URL. */
  serve(path: string, image: ServedImage): string {
    this.images.set(path, { ...image, served: 0 });
    return `${this.base}${path}`;
  }

  requestsFor(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Ends the stalled responses (their clients see a cut connection) and stops stalling. */
  release(): void {
    for (const img of this.images.values()) delete img.stallAfter;
    for (const res of this.stalled) res.destroy();
    this.stalled.clear();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const img = this.images.get(path);
    const seen: SeenRequest = { path, range: req.headers.range, authorization: req.headers.authorization, status: 0 };
    this.requests.push(seen);
    const answer = (status: number) => {
      seen.status = status;
      res.statusCode = status;
    };
    if (!img) {
      answer(404);
      return void res.end();
    }
    const n = img.served++;
    if (img.auth) {
      const expected = `Basic ${Buffer.from(`${img.auth.username}:${img.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        answer(401);
        return void res.end();
      }
    }
    if (n < (img.failFirst ?? 0)) {
      answer(503);
      return void res.end();
    }
    const size = img.bytes.length;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (m && !img.ignoreRange) {
      start = Number(m[1]);
      if (start >= size) {
        answer(416);
        res.setHeader('content-range', `bytes */${size}`);
        return void res.end();
      }
      answer(206);
      res.setHeader('content-range', `bytes ${start}-${size - 1}/${size}`);
    } else {
      answer(200);
    }
    const body = img.bytes.subarray(start);
    res.setHeader('content-length', body.length);
    res.setHeader('content-type', 'application/octet-stream');
    const cut = n === 0 ? img.cutFirstAfter : undefined;
    if (cut !== undefined) {
      res.flushHeaders();
      res.write(body.subarray(0, cut), () => res.socket?.destroy());
      return;
    }
    if (img.stallAfter !== undefined) {
      const upTo = Math.max(0, img.stallAfter - start);
      res.write(body.subarray(0, upTo));
      this.stalled.add(res);
      res.once('close', () => this.stalled.delete(res));
      return;
    }
    res.end(body);
  }
}
