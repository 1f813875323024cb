// The HTTP server's limits (api/http/server.ts), through real sockets: api/main.ts and the test
// stack both listen through listen().
import net from 'node:net';
import type http from 'node:http';
import express from 'express';
import { DEFAULT_SERVER_LIMITS, listen } from './server';
import { loadConfig } from '../../runtime/config';

const app = express();
app.get('/', (_req, res) => void res.send('ok'));
app.post('/', (req, res) => {
  req.resume();
  req.on('end', () => res.send('ok'));
});

let server: http.Server;
beforeAll(async () => {
  server = await listen(app, 0, '127.0.0.1', { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 1_000 });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Writes `bytes`, then waits; resolves with the answer once the server closes (or after 20 s). */
function send(bytes: string, then?: (socket: net.Socket) => void): Promise<{ answer: string; closed: boolean }> {
  const { port } = server.address() as net.AddressInfo;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      then?.(socket);
    });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closed: false });
    }, 20_000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closed: true });
    });
  });
}

describe('the API server limits', () => {
  it('sets the timeouts it was given', () => {
    expect(server.headersTimeout).toBe(1_000);
    expect(server.requestTimeout).toBe(2_000);
    expect(server.keepAliveTimeout).toBe(1_000);
    expect(server.maxHeadersCount).toBe(100);
    expect(server.timeout).toBe(0);
  });

  it('closes a connection whose headers never finish (slow loris) with 408', async () => {
    const r = await send('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(r.closed).toBe(true);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose body never finishes with 408', async () => {
    const r = await send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
    expect(r.closed).toBe(true);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes an idle keep-alive connection after keepAliveTimeout', async () => {
    const r = await send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.answer).toMatch(/Keep-Alive: timeout=1/);
  });

  it('refuses headers larger than 16 KB with 431', async () => {
    const r = await send(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
    expect(r.answer).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('has defaults chosen for a server behind a load balancer, set from the configuration', () => {
    const c = loadConfig({});
    expect(DEFAULT_SERVER_LIMITS).toEqual({
      headersTimeoutMs: c.HTTP_HEADERS_TIMEOUT_S * 1000,
      requestTimeoutMs: c.HTTP_REQUEST_TIMEOUT_S * 1000,
      keepAliveTimeoutMs: c.HTTP_KEEP_ALIVE_TIMEOUT_S * 1000,
    });
    expect(DEFAULT_SERVER_LIMITS.keepAliveTimeoutMs).toBeGreaterThan(60_000);
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_S: '90', HTTP_REQUEST_TIMEOUT_S: '60' })).toThrow(/HTTP_HEADERS_TIMEOUT_S/);
    expect(() => loadConfig({ EXPORT_CONCURRENCY: '0' })).toThrow(/EXPORT_CONCURRENCY/);
    expect(loadConfig({ EXPORT_STALL_TIMEOUT_S: '2' }).EXPORT_STALL_TIMEOUT_S).toBe(2);
  });
});
