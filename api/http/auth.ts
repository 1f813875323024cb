// Who is calling: an API token (a user's, optionally limited to one company), a sign-in session,
// or ADMIN_TOKEN (the platform admin made on first start). The caller's rights are read from
// their user and participations on each lookup, and lookups are cached briefly: a revoked token,
// an ended session or a lost role stops counting within the cache time. What the caller may do
// is decided by api/http/policy.ts.
import type { Request, RequestHandler } from 'express';
import { sha256Hex, safeEqual, SESSION_PREFIX, TOKEN_PREFIX } from '../../domain/credentials';
import { CROCKFORD } from '../../domain/ids';
import type { CompanyRole } from '../../domain/roles';
import { ForbiddenError, UnauthorizedError } from '../../domain/errors';
import type { Db } from '../../db/knex';
import { findActiveTokenByHash, touchToken } from '../../db/repositories/tokens';
import { findLiveSessionByHash } from '../../db/repositories/sessions';
import { bootstrapAdminId, getUser } from '../../db/repositories/users';
import { rolesOf } from '../../db/repositories/companies';
import { decide, type Permission, type Principal } from './policy';

export type { Permission, Principal } from './policy';

/** Token lookups are cached briefly: a revoked token stops working within this time. */
export const CACHE_MS = 5_000;

/** The shapes newApiToken and newSessionToken give: anything else is refused without asking the database. */
const TOKEN_SHAPE = new RegExp(`^${TOKEN_PREFIX}[${CROCKFORD}]{51}$`);
const SESSION_SHAPE = new RegExp(`^${SESSION_PREFIX}[${CROCKFORD}]{51}$`);

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

/** The principal a user acts as, through a credential that may be limited to one company. */
async function principalOf(db: Db, userId: string, via: Principal['via'], credentialId: string, companyId: string | null): Promise<Principal | null> {
  const [user, roles] = await Promise.all([getUser(db, userId), rolesOf(db, userId)]);
  if (!user) return null;
  if (companyId === null) return { credentialId, via, userId, email: user.email, platformAdmin: user.platformAdmin, roles, companyId: null };
  // A company token: the user's role there, and nothing else (a platform admin's: admin of it).
  const role: CompanyRole | undefined = user.platformAdmin ? 'admin' : roles[companyId];
  return { credentialId, via, userId, email: user.email, platformAdmin: false, roles: role ? { [companyId]: role } : {}, companyId };
}

export function authenticator(db: Db, adminToken: string | undefined, opts: AuthOptions = {}) {
  const cacheMs = opts.cacheMs ?? CACHE_MS;
  const now = opts.now ?? Date.now;
  const known = new Lru<{ principal: Principal; until: number }>(opts.maxKnown ?? 10_000);
  const unknown = new Lru<number>(opts.maxUnknown ?? 10_000);

  async function lookup(token: string): Promise<{ principal: Principal; expiresAt: number } | null> {
    const hash = sha256Hex(token);
    if (SESSION_SHAPE.test(token)) {
      const session = await findLiveSessionByHash(db, hash);
      const principal = session && (await principalOf(db, session.userId, 'session', session.id, null));
      return principal ? { principal, expiresAt: Date.parse(session.expiresAt) } : null;
    }
    const record = await findActiveTokenByHash(db, hash);
    const principal = record && (await principalOf(db, record.userId, 'token', record.id, record.companyId));
    if (!principal) return null;
    touchToken(db, record.id).catch(() => undefined); // best effort: last-used is informational
    return { principal, expiresAt: record.expiresAt ? Date.parse(record.expiresAt) : Infinity };
  }

  async function resolve(token: string): Promise<Principal | null> {
    if (adminToken && safeEqual(token, adminToken)) return envAdmin();
    if (!TOKEN_SHAPE.test(token) && !SESSION_SHAPE.test(token)) return null;
    const hash = sha256Hex(token);
    const hit = known.get(hash);
    if (hit && hit.until > now()) return hit.principal;
    const miss = unknown.get(hash);
    if (miss !== undefined && miss > now()) return null;
    const found = await lookup(token);
    if (!found) {
      known.delete(hash);
      unknown.set(hash, now() + cacheMs);
      return null;
    }
    // Never cached past the credential's own expiry.
    known.set(hash, { principal: found.principal, until: Math.min(now() + cacheMs, found.expiresAt) });
    return found.principal;
  }

  let admin: { principal: Principal; until: number } | undefined;
  async function envAdmin(): Promise<Principal | null> {
    if (admin && admin.until > now()) return admin.principal;
    const id = await bootstrapAdminId(db);
    const principal = id ? await principalOf(db, id, 'env', 'env:ADMIN_TOKEN', null) : null;
    if (principal) admin = { principal, until: now() + cacheMs };
    return principal;
  }

  /** Resolves the caller of a request from its bearer token, or throws 401. */
  const authenticate = async (req: Request): Promise<Principal> => {
    const token = bearer(req);
    if (token === null) throw new UnauthorizedError();
    const principal = await resolve(token);
    if (!principal) throw new UnauthorizedError('the bearer token is unknown, revoked or expired');
    return principal;
  };
  /** Drops this request's credential from this process's cache (sign-out takes effect at once here). */
  authenticate.forget = (req: Request) => {
    const token = bearer(req);
    if (token !== null) known.delete(sha256Hex(token));
  };
  /** Drops a credential known by its stored hash (a revoked token: refused at once here, within the cache time elsewhere). */
  authenticate.forgetHash = (tokenHash: string) => known.delete(tokenHash);
  return authenticate;
}

function bearer(req: Request): string | null {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match ? match[1]! : null;
}

export type Authenticate = ReturnType<typeof authenticator>;

/**
 * Express middleware run before anything reads the request body: sets res.locals.principal (null
 * on a public route, or an anonymous caller of a route open to them), or refuses. A refused
 * request's body is never read; the connection is closed instead, so an anonymous client cannot
 * make the server take in its upload either.
 */
export function authorize(authenticate: Authenticate, permission: Permission | null, openToAnonymous?: () => boolean): RequestHandler {
  return async (req, res, next) => {
    if (permission === null || (openToAnonymous?.() && req.headers.authorization === undefined)) {
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

/** 403 unless the caller holds the permission somewhere (the resource is checked by the handler's lookup). */
export function requirePermission(p: Principal, permission: Permission): Principal {
  if (decide(p, permission) !== 'allow') throw new ForbiddenError(`this caller may not do this (needs '${permission}')`);
  return p;
}
