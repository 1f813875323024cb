// API tokens: only their SHA-256 is stored; the token itself is shown once, at creation.
import type { Db } from '../knex';
import { decodeCursor, toPage, type Page } from '../pagination';

export const TOKEN_KINDS = ['admin', 'manufacturer'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface TokenRecord {
  id: string;
  kind: TokenKind;
  name: string;
  companyId: string | null;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

interface TokenRow {
  id: string;
  kind: TokenKind;
  name: string;
  token_hash: string;
  company_id: string | null;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

function toToken(r: TokenRow): TokenRecord {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    companyId: r.company_id,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
    lastUsedAt: r.last_used_at ? r.last_used_at.toISOString() : null,
  };
}

export async function insertToken(
  db: Db,
  t: { id: string; kind: TokenKind; name: string; tokenHash: string; companyId?: string | null; createdBy?: string | null },
): Promise<TokenRecord> {
  const [row] = await db<TokenRow>('tokens')
    .insert({ id: t.id, kind: t.kind, name: t.name, token_hash: t.tokenHash, company_id: t.companyId ?? null, created_by: t.createdBy ?? null })
    .returning('*');
  return toToken(row as TokenRow);
}

/** The live (not revoked) token with this hash. */
export async function findActiveTokenByHash(db: Db, tokenHash: string): Promise<TokenRecord | null> {
  const row = await db<TokenRow>('tokens').where({ token_hash: tokenHash }).whereNull('revoked_at').first();
  return row ? toToken(row) : null;
}

export async function touchToken(db: Db, id: string): Promise<void> {
  await db('tokens').where({ id }).update({ last_used_at: db.fn.now() });
}

export async function listTokens(db: Db, opts: { limit: number; cursor?: string }): Promise<Page<TokenRecord>> {
  const q = db<TokenRow>('tokens').orderBy('id').limit(opts.limit + 1);
  if (opts.cursor) q.where('id', '>', decodeCursor(opts.cursor, ['string'] as const)[0]);
  return toPage(await q, opts.limit, toToken, (r) => [r.id]);
}

export async function getToken(db: Db, id: string): Promise<TokenRecord | null> {
  const row = await db<TokenRow>('tokens').where({ id }).first();
  return row ? toToken(row) : null;
}

/** Returns false when there is no such token. Revoking twice keeps the first revocation time. */
export async function revokeToken(db: Db, id: string): Promise<boolean> {
  const n = await db('tokens').where({ id }).update({ revoked_at: db.raw('COALESCE(revoked_at, now())') });
  return n > 0;
}
