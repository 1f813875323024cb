// Ports for tests and for the embedded services' start-up checks.
import net from 'node:net';

/** A TCP port that was free a moment ago (the OS picks it; racy by nature, good enough for tests). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * True when nothing listens on host:port. Checked before spawning a server, because a readiness
 * probe against an occupied port would happily talk to whatever already runs there.
 */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(err);
    });
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
