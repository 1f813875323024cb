// Who is calling, and may they do this. Every route names a permission; a token's kind maps to
// a role, and a role to its permissions. Companies and user roles (a later issue) grow here:
// a principal already carries its company scope.
import type { Request, RequestHandler } from 'express';
import { sha256Hex, safeEqual, TOKEN_PREFIX } from '../../domain/credentials';
import { CROCKFORD } from '../../domain/ids';
import { ForbiddenError, UnauthorizedError } from '../../domain/errors';
import type { Db } from '../../db/knex';
import { findActiveTokenByHash, touchToken, type TokenKind } from '../../db/repositories/tokens';

export const PERMISSIONS = [
  'batches:create',
  'batches:read',
  'batches:export', // CSV, bundle, QR: they carry device credentials
  'devices:read',
  'devices:status', // move a device through its lifecycle (manufacturers: provisioning statuses only)
  'devices:telemetry', // sensors' values, history, logs, alerts: what the device says
  'devices:control', // set a sensor, run a diagnostic command
  'devices:configure', // change a device's desired settings
  'devices:block', // refuse a device at the broker (and cut it off), or let it in again
  'devices:credentials', // rotate a device's MQTT secret (the new one is shown once)
  'alerts:manage', // threshold rules, resolving alerts
  'tokens:manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const ROLE_PERMISSIONS: Record<TokenKind, readonly Permission[]> = {
  admin: PERMISSIONS,
  manufacturer: ['batches:read', 'batches:export', 'devices:read', 'devices:status'],
};

export interface Principal {
  tokenId: string;
  kind: TokenKind;
  name: string;
  /** null: platform-wide (a platform admin). */
  companyId: string | null;
}

/** Token lookups are cached briefly: a revoked token stops working within this time. */
const CACHE_MS = 5_000;

/** The shape newApiToken gives: anything else is refused without asking the database. */
const TOKEN_SHAPE = new RegExp(`^${TOKEN_PREFIX}[${CROCKFORD}]{51}$`);

export interface AuthOptions {
  cacheMs?: number;
  /** Live tokens remembered (least recently used dropped first). */
  maxKnown?: number;
  /** Unknown (well-formed) tokens remembered, apart: a flood of them cannot push out the live ones. */
  maxUnknown?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** A Map kept in use order: a hit moves to the end, the oldest entry goes when it is full. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

export function authenticator(db: Db, adminToken: string | undefined, opts: AuthOptions = {}) {
  const cacheMs = opts.cacheMs ?? CACHE_MS;
  const now = opts.now ?? Date.now;
  const known = new Lru<{ principal: Principal; until: number }>(opts.maxKnown ?? 10_000);
  const unknown = new Lru<number>(opts.maxUnknown ?? 10_000);

  async function resolve(token: string): Promise<Principal | null> {
    if (adminToken && safeEqual(token, adminToken)) return { tokenId: 'env:ADMIN_TOKEN', kind: 'admin', name: 'ADMIN_TOKEN', companyId: null };
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = sha256Hex(token);
    const hit = known.get(hash);
    if (hit && hit.until > now()) return hit.principal;
    const miss = unknown.get(hash);
    if (miss !== undefined && miss > now()) return null;
    const record = await findActiveTokenByHash(db, hash);
    if (!record) {
      known.delete(hash);
      unknown.set(hash, now() + cacheMs);
      return null;
    }
    const principal = { tokenId: record.id, kind: record.kind, name: record.name, companyId: record.companyId };
    known.set(hash, { principal, until: now() + cacheMs });
    touchToken(db, record.id).catch(() => undefined); // best effort: last-used is informational
    return principal;
  }

  /** Resolves the caller of a request from its bearer token, or throws 401. */
  return async (req: Request): Promise<Principal> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthorizedError();
    const principal = await resolve(match[1]!);
    if (!principal) throw new UnauthorizedError('the bearer token is unknown or revoked');
    return principal;
  };
}

/**
 * Express middleware run before anything reads the request body: sets res.locals.principal (null
 * on a public route), or refuses. A refused request's body is never read; the connection is
 * closed instead, so an anonymous client cannot make the server take in its upload either.
 */
export function authorize(authenticate: Authenticate, permission: Permission | null): RequestHandler {
  return async (req, res, next) => {
    if (permission === null) {
      res.locals.principal = null;
      return next();
    }
    try {
      res.locals.principal = requirePermission(await authenticate(req), permission);
    } catch (err) {
      if (hasBody(req)) res.setHeader('Connection', 'close');
      throw err;
    }
    next();
  };
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

export type Authenticate = ReturnType<typeof authenticator>;

export function can(principal: Principal, permission: Permission): boolean {
  return ROLE_PERMISSIONS[principal.kind].includes(permission);
}

export function requirePermission(p: Principal, permission: Permission): Principal {
  if (!can(p, permission)) throw new ForbiddenError(`a ${p.kind} token may not do this (needs '${permission}')`);
  return p;
}
