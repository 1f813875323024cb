// Who is calling, and may they do this. Every route names a permission; a token's kind maps to
// a role, and a role to its permissions. Companies and user roles (a later issue) grow here:
// a principal already carries its company scope.
import type { Request } from 'express';
import { sha256Hex, safeEqual } from '../../domain/credentials';
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

export function authenticator(db: Db, adminToken: string | undefined) {
  const cache = new Map<string, { principal: Principal | null; until: number }>();

  async function resolve(token: string): Promise<Principal | null> {
    if (adminToken && safeEqual(token, adminToken)) return { tokenId: 'env:ADMIN_TOKEN', kind: 'admin', name: 'ADMIN_TOKEN', companyId: null };
    const hash = sha256Hex(token);
    const hit = cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.principal;
    const record = await findActiveTokenByHash(db, hash);
    const principal = record ? { tokenId: record.id, kind: record.kind, name: record.name, companyId: record.companyId } : null;
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { principal, until: Date.now() + CACHE_MS });
    if (record) touchToken(db, record.id).catch(() => undefined); // best effort: last-used is informational
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

export type Authenticate = ReturnType<typeof authenticator>;

export function can(principal: Principal, permission: Permission): boolean {
  return ROLE_PERMISSIONS[principal.kind].includes(permission);
}

export function requirePermission(p: Principal, permission: Permission): Principal {
  if (!can(p, permission)) throw new ForbiddenError(`a ${p.kind} token may not do this (needs '${permission}')`);
  return p;
}
