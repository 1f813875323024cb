// Login and ACL decisions made by the platform itself, for brokers that ask (the aedes fallback's
// hooks): Postgres holds each device's secret hash and block flag; the platform's own clients'
// passwords are derived from the platform key. Lookups are cached briefly.
import type { AedesOptions, Client } from 'aedes';
import { deviceIdOfUsername, isPlatformClient, mayPublish, maySubscribe } from '../domain/broker-identity';
import { safeEqual, sha256Hex, type CredentialDeriver } from '../domain/credentials';
import type { Db } from '../db/knex';

export interface DeviceAuthenticator {
  authenticate(username: string, password: string): Promise<boolean>;
  /** False once the device is blocked (or gone): its connection should end. Cached like logins. */
  stillAllowed(username: string): Promise<boolean>;
  mayPublish(username: string, topic: string): boolean;
  maySubscribe(username: string, filter: string): boolean;
}

export function createDeviceAuthenticator(o: { db: Db; credentials: CredentialDeriver; cacheMs?: number; now?: () => number }): DeviceAuthenticator {
  const cacheMs = o.cacheMs ?? 500;
  const now = o.now ?? Date.now;
  const cache = new Map<string, { hash: string | null; at: number }>();
  async function hashOf(deviceId: string): Promise<string | null> {
    const hit = cache.get(deviceId);
    if (hit && now() - hit.at < cacheMs) return hit.hash;
    const row = (await o.db('devices').where({ id: deviceId }).first('secret_hash', 'blocked')) as { secret_hash: string; blocked: boolean } | undefined;
    const hash = row && !row.blocked ? row.secret_hash : null;
    if (cache.size > 100_000) cache.clear();
    cache.set(deviceId, { hash, at: now() });
    return hash;
  }
  return {
    async authenticate(username, password) {
      if (!username || !password) return false;
      if (isPlatformClient(username)) return safeEqual(password, o.credentials.platformPassword(username));
      const id = deviceIdOfUsername(username);
      if (!id) return false;
      const hash = await hashOf(id);
      return hash !== null && safeEqual(sha256Hex(password), hash);
    },
    async stillAllowed(username) {
      if (isPlatformClient(username)) return true;
      const id = deviceIdOfUsername(username);
      return id !== null && (await hashOf(id)) !== null;
    },
    mayPublish,
    maySubscribe,
  };
}

const USER = Symbol('rdm-mqtt-username');
type Tagged = Client & { [USER]?: string };

/**
 * aedes hooks on the authenticator: the username is remembered on the connection at CONNECT, and
 * every `sweepMs` the connected devices are checked again, so a blocked one is cut off (within
 * the sweep plus the authenticator's cache).
 */
export function aedesAuthHooks(auth: DeviceAuthenticator, sweepMs = 500): Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'> {
  const refused = () => Object.assign(new Error('not authorized'), { returnCode: 5 });
  const connected = new Set<Tagged>();
  const timer = setInterval(() => {
    for (const c of connected) {
      if (c.closed) {
        connected.delete(c);
        continue;
      }
      void auth.stillAllowed(c[USER]!).then((ok) => {
        if (!ok) {
          connected.delete(c);
          c.close();
        }
      }, () => undefined);
    }
  }, sweepMs);
  timer.unref();
  return {
    authenticate: (client, username, password, done) => {
      auth.authenticate(username ?? '', password ? password.toString('utf8') : '').then(
        (ok) => {
          if (ok) {
            (client as Tagged)[USER] = username;
            if (!isPlatformClient(username!)) connected.add(client as Tagged);
          }
          done(ok ? null : (refused() as never), ok);
        },
        () => done(refused() as never, false),
      );
    },
    authorizePublish: (client, packet, done) => {
      const user = client ? (client as Tagged)[USER] : undefined;
      done(user && auth.mayPublish(user, packet.topic) ? null : new Error('publish not authorized'));
    },
    authorizeSubscribe: (client, sub, done) => {
      const user = (client as Tagged)[USER];
      // null: the subscription is refused (SUBACK 0x80), the connection stays.
      done(null, user && auth.maySubscribe(user, sub.topic) ? sub : (null as never));
    },
  };
}
