// Sign-in sessions: only the token's SHA-256 is stored; the token is in the sign-in answer only.
import type { Db } from '../knex';

export interface SessionRecord {
  id: string;
  userId: string;
  expiresAt: string;
}

/** Also forgets the user's sessions that ended over a day ago, so the table does not grow with every sign-in. */
export async function insertSession(db: Db, s: { id: string; userId: string; tokenHash: string; expiresAt: Date }): Promise<SessionRecord> {
  await db('sessions')
    .where({ user_id: s.userId })
    .andWhere((q) => {
      q.where('expires_at', '<', db.raw("now() - interval '1 day'")).orWhere('revoked_at', '<', db.raw("now() - interval '1 day'"));
    })
    .delete();
  await db('sessions').insert({ id: s.id, user_id: s.userId, token_hash: s.tokenHash, expires_at: s.expiresAt });
  return { id: s.id, userId: s.userId, expiresAt: s.expiresAt.toISOString() };
}

/** The live session with this hash: not revoked, not expired. */
export async function findLiveSessionByHash(db: Db, tokenHash: string): Promise<SessionRecord | null> {
  const r = await db('sessions').where({ token_hash: tokenHash }).whereNull('revoked_at').andWhere('expires_at', '>', db.fn.now()).first('id', 'user_id', 'expires_at');
  return r ? { id: r.id, userId: r.user_id, expiresAt: (r.expires_at as Date).toISOString() } : null;
}

export async function revokeSession(db: Db, id: string): Promise<void> {
  await db('sessions').where({ id }).update({ revoked_at: db.raw('COALESCE(revoked_at, now())') });
}

/** Ends every live session of a user but `keep` (the one asking, when it is a session); how many ended. */
export async function revokeOtherSessions(db: Db, userId: string, keep: string | null): Promise<number> {
  const q = db('sessions').where({ user_id: userId }).whereNull('revoked_at').andWhere('expires_at', '>', db.fn.now());
  if (keep) q.whereNot({ id: keep });
  return q.update({ revoked_at: db.fn.now() });
}
