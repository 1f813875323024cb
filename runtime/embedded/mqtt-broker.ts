// The embedded MQTT broker of `npm start` when no broker answers: aedes (MQTT 3.1.1, in-memory
// persistence: retained messages and QoS 1 sessions live as long as the process).
import net from 'node:net';
import type { Aedes, AedesOptions } from 'aedes';
import type { EmbeddedLog } from './managed-process';
import { requireNative } from './native-require';

/** Seam for device credentials and topic ACLs (aedes handlers, passed through unchanged). */
export interface BrokerAuthHooks {
  authenticate?: AedesOptions['authenticate'];
  authorizePublish?: AedesOptions['authorizePublish'];
  authorizeSubscribe?: AedesOptions['authorizeSubscribe'];
}

export interface EmbeddedBrokerOptions {
  /** 0 picks a free port (tests); the URL tells which. */
  port: number;
  /** Default 127.0.0.1; '0.0.0.0' lets devices on the network connect. */
  host?: string;
  log: EmbeddedLog;
  auth?: BrokerAuthHooks;
}

export interface EmbeddedBroker {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedBroker(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const { Aedes: AedesClass } = requireNative<typeof import('aedes')>('aedes'); // ESM-only package
  const host = o.host ?? '127.0.0.1';
  const options: AedesOptions = {};
  // Only the hooks given: an undefined value would replace aedes's defaults (e.g. the $SYS guard).
  for (const key of ['authenticate', 'authorizePublish', 'authorizeSubscribe'] as const) {
    if (o.auth?.[key]) (options as Record<string, unknown>)[key] = o.auth[key];
  }
  // 1.x: createBroker() awaits listen() (persistence and mq setup); `new Aedes()` alone is not ready.
  const broker: Aedes = await AedesClass.createBroker(options);
  broker.on('clientError', (client, err) => o.log.debug({ clientId: client?.id, err: err.message }, 'mqtt client error'));
  broker.on('connectionError', (client, err) => o.log.debug({ clientId: client?.id, err: err.message }, 'mqtt connection error'));

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    // Nagle + delayed ACK would add ~40-90 ms to every QoS 1 round trip; aedes does not set it.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    const e = err as NodeJS.ErrnoException;
    throw new Error(
      e.code === 'EADDRINUSE'
        ? `cannot start the embedded MQTT broker: ${host}:${o.port} is already in use (set MQTT_PORT, or MQTT_URL to use that broker)`
        : `cannot start the embedded MQTT broker on ${host}:${o.port}: ${e.message}`,
    );
  }
  server.on('error', (err) => o.log.error({ err }, 'embedded MQTT broker socket error'));
  const { port } = server.address() as net.AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  o.log.info({ host, port }, 'embedded MQTT broker running');

  let stopped: Promise<void> | null = null;
  return {
    url: `mqtt://${urlHost}:${port}`,
    stop: () =>
      (stopped ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r())); // stop accepting
        await new Promise<void>((r) => broker.close(() => r())); // disconnect clients, stop timers
        for (const s of sockets) s.destroy(); // whatever aedes left half-open
        await closed;
      })()),
  };
}
