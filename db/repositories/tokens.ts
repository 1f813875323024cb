// API tokens: only their SHA-256 is stored; the token itself is shown once, at creation. A token
// belongs to a user and (optionally) one company: it acts with that user's rights there, read
// afresh on each lookup (api/http/auth.ts), never with rights of its own.
import type { Db } from '../knex';
import { decodeCursor, toPage, type Page } from '../pagination';

export interface TokenRecord {
  id: string;
  name: string;
  userId: string;
  /** null: acts with all the user's rights (every company they are in, their own devices). */
  companyId: string | null;
  createdBy: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

interface TokenRow {
  id: string;
  name: string;
  token_hash: string;
  user_id: string;
  company_id: string | null;
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toToken(r: TokenRow): TokenRecord {
  return {
    id: r.id,
    name: r.name,
    userId: r.user_id,
    companyId: r.company_id,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    expiresAt: iso(r.expires_at),
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
  };
}

export async function insertToken(
  db: Db,
  t: { id: string; name: string; tokenHash: string; userId: string; companyId?: string | null; expiresAt?: string | null; createdBy?: string | null },
): Promise<TokenRecord> {
  const [row] = await db<TokenRow>('tokens')
    .insert({ id: t.id, name: t.name, token_hash: t.tokenHash, user_id: t.userId, company_id: t.companyId ?? null, expires_at: t.expiresAt ? new Date(t.expiresAt) : null, created_by: t.createdBy ?? null })
    .returning('*');
  return toToken(row as TokenRow);
}

/** The live token with this hash: not revoked, not expired. */
export async function findActiveTokenByHash(db: Db, tokenHash: string): Promise<TokenRecord | null> {
  const row = await db<TokenRow>('tokens')
    .where({ token_hash: tokenHash })
    .whereNull('revoked_at')
    .andWhere((q) => {
      q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now());
    })
    .first();
  return row ? toToken(row) : null;
}

export async function touchToken(db: Db, id: string): Promise<void> {
  await db('tokens').where({ id }).update({ last_used_at: db.fn.now() });
}

/** Tokens by ID; `userId` limits the list to that user's, `companyId` to those limited to that company. */
export async function listTokens(db: Db, opts: { userId?: string; companyId?: string; limit: number; cursor?: string }): Promise<Page<TokenRecord>> {
  const q = db<TokenRow>('tokens').orderBy('id').limit(opts.limit + 1);
  if (opts.userId) q.where('user_id', opts.userId);
  if (opts.companyId) q.where('company_id', opts.companyId);
  if (opts.cursor) q.where('id', '>', decodeCursor(opts.cursor, ['string'] as const)[0]);
  return toPage(await q, opts.limit, toToken, (r) => [r.id]);
}

export async function getToken(db: Db, id: string): Promise<TokenRecord | null> {
  const row = await db<TokenRow>('tokens').where({ id }).first();
  return row ? toToken(row) : null;
}

/**
 * Revokes a live token; its hash (for the caller to drop it from the credential cache), or null
 * when it was revoked already (the first revocation time stays) or does not exist.
 */
export async function revokeToken(db: Db, id: string): Promise<{ tokenHash: string } | null> {
  const rows: { token_hash: string }[] = await db('tokens').where({ id }).whereNull('revoked_at').update({ revoked_at: db.fn.now() }).returning(['token_hash']);
  return rows[0] ? { tokenHash: rows[0].token_hash } : null;
}
