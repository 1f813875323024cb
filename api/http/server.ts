// The API's HTTP server and its limits, chosen on purpose (Node's defaults suit neither a server
// on the open internet nor one behind a load balancer). api/main.ts and the test stack both listen
// through here, so what is tested is what runs. docs/api.md "Limits and timeouts" explains each.
import http from 'node:http';
import type { RequestListener } from 'node:http';

export interface ServerLimits {
  /** Time to receive a request's headers (slow-loris guard); HTTP_HEADERS_TIMEOUT_S. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (at most 1 MB); HTTP_REQUEST_TIMEOUT_S. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open; HTTP_KEEP_ALIVE_TIMEOUT_S. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  // Above the 60 s idle timeout of common load balancers, so that they, not we, close an idle
  // connection (else a request sent as we close it fails with a reset).
  keepAliveTimeoutMs: 65_000,
};

/** Fixed limits: no legitimate client of this API comes near them. */
const MAX_HEADER_BYTES = 16 * 1024; // larger headers: 431
const MAX_HEADERS_COUNT = 100; // headers past the 100th are ignored

export function createServer(app: RequestListener, limits: ServerLimits = DEFAULT_SERVER_LIMITS): http.Server {
  const server = http.createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the header and request timeouts are checked (Node's default, 30 s, would let a
      // 20 s limit run to 50 s).
      connectionsCheckingInterval: Math.max(250, Math.min(5_000, limits.headersTimeoutMs / 4)),
    },
    app,
  );
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  // No idle timeout on the socket as a whole: long answers (a device's reply, a bulk change, a
  // download) are legitimate; a download whose client stops reading is cut off by api/exports.ts.
  server.timeout = 0;
  return server;
}

/** Creates the server and starts listening; resolves once it does, rejects if it cannot. */
export function listen(app: RequestListener, port: number, host: string, limits?: ServerLimits): Promise<http.Server> {
  const server = createServer(app, limits);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
