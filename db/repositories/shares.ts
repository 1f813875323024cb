// Device shares. A share is open until it ends (revoked, expired, unpaired); it counts only while
// open and before its expiry, whatever the expiry timer is doing, so a late timer never extends
// one. Ending is idempotent: a second end of the same share changes nothing and records nothing.
import type { Knex } from 'knex';
import type { Db } from '../knex';
import { insertAudit } from './audit';
import { decodeCursor, toPage, type Page } from '../pagination';
import { ConflictError } from '../../domain/errors';
import type { ShareRole } from '../../domain/roles';
import { MAX_LIVE_SHARES_PER_DEVICE, type Share, type ShareEndReason } from '../../domain/sharing';

interface ShareRow {
  id: string;
  device_id: string;
  user_id: string;
  role: ShareRole;
  expires_at: Date | null;
  created_by: string;
  created_at: Date;
  ended_at: Date | null;
  end_reason: ShareEndReason | null;
}

const toShare = (r: ShareRow): Share => ({
  id: r.id,
  deviceId: r.device_id,
  userId: r.user_id,
  role: r.role,
  expiresAt: r.expires_at ? r.expires_at.toISOString() : null,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  endedAt: r.ended_at ? r.ended_at.toISOString() : null,
  endReason: r.end_reason,
});

/** Open and not past its expiry (as a knex where on `device_shares`). */
function live(q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q.whereNull('ended_at').whereRaw('(expires_at IS NULL OR expires_at > now())');
}

/** The role of the caller's live share of a device, or null. */
export async function liveShareRole(db: Db, deviceId: string, userId: string): Promise<ShareRole | null> {
  const row = (await live(db('device_shares').where({ device_id: deviceId, user_id: userId })).first('role')) as { role: ShareRole } | undefined;
  return row?.role ?? null;
}

/** The roles of a user's live shares among these devices, by device ID. */
export async function liveShareRoles(db: Db, userId: string, deviceIds: readonly string[]): Promise<Map<string, ShareRole>> {
  if (deviceIds.length === 0) return new Map();
  const rows = (await live(db('device_shares').where({ user_id: userId }).whereIn('device_id', deviceIds as string[])).select('device_id', 'role')) as { device_id: string; role: ShareRole }[];
  return new Map(rows.map((r) => [r.device_id, r.role]));
}

/** Device IDs shared with a user in one of `roles` (for GET /devices: a subquery, not a list). */
export function sharedDeviceIds(db: Db, userId: string, roles: readonly ShareRole[]): Knex.QueryBuilder {
  return live(db('device_shares').where({ user_id: userId }).whereIn('role', roles as ShareRole[])).select('device_id');
}

export async function getShare(db: Db, deviceId: string, id: string): Promise<Share | null> {
  const row: ShareRow | undefined = await db('device_shares').where({ id, device_id: deviceId }).first();
  return row ? toShare(row) : null;
}

/** A device's shares, newest first; ended ones only when asked. */
export async function listShares(db: Db, deviceId: string, o: { includeEnded: boolean; limit: number; cursor?: string }): Promise<Page<Share>> {
  const q = db('device_shares').where({ device_id: deviceId }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(o.limit + 1);
  if (!o.includeEnded) live(q);
  if (o.cursor) {
    const [at, id] = decodeCursor(o.cursor, ['timestamp', 'string'] as const);
    q.whereRaw('(created_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows: ShareRow[] = await q;
  return toPage(rows, o.limit, toShare, (r) => [r.created_at.toISOString(), r.id]);
}

type Actor = { userId: string | null; credentialId: string | null };

/**
 * Records a share. Refuses a second open share for the same person (409 already_shared) and more
 * than MAX_LIVE_SHARES_PER_DEVICE; a share past its expiry that its timer has not ended yet is
 * ended here first, so it never stands in the way.
 */
export async function createShare(db: Db, s: Omit<Share, 'createdAt' | 'endedAt' | 'endReason'>, companyId: string | null, actor: Actor): Promise<Share> {
  return db.transaction(async (trx) => {
    // One writer per device at a time: the count below cannot race another share of it.
    await trx.raw('SELECT 1 FROM devices WHERE id = ? FOR UPDATE', [s.deviceId]);
    await endStale(trx, s.deviceId, companyId);
    const [{ count }] = (await live(trx('device_shares').where({ device_id: s.deviceId })).count({ count: '*' })) as [{ count: string }];
    if (Number(count) >= MAX_LIVE_SHARES_PER_DEVICE) throw new ConflictError('too_many_shares', `a device is shared with at most ${MAX_LIVE_SHARES_PER_DEVICE} people at a time`);
    const inserted: ShareRow[] = await trx('device_shares')
      .insert({ id: s.id, device_id: s.deviceId, user_id: s.userId, role: s.role, expires_at: s.expiresAt, created_by: s.createdBy })
      .onConflict(trx.raw('(user_id, device_id) WHERE ended_at IS NULL'))
      .ignore()
      .returning('*');
    if (inserted.length === 0) throw new ConflictError('already_shared', `the device is already shared with user '${s.userId}': end that share first`);
    await insertAudit(trx, actor, { action: 'device.shared', companyId, deviceId: s.deviceId, target: { type: 'share', id: s.id }, details: { userId: s.userId, role: s.role, expiresAt: s.expiresAt } });
    return toShare(inserted[0]!);
  });
}

/** Ends open shares of a device already past their expiry (their timers are late or gone). */
async function endStale(trx: Knex.Transaction, deviceId: string, companyId: string | null): Promise<void> {
  const ended: ShareRow[] = await trx('device_shares')
    .where({ device_id: deviceId })
    .whereNull('ended_at')
    .andWhere('expires_at', '<=', trx.raw('now()'))
    .update({ ended_at: trx.raw('expires_at'), end_reason: 'expired' })
    .returning('*');
  for (const r of ended) await auditEnd(trx, { userId: null, credentialId: null }, companyId, r);
}

function auditEnd(db: Db | Knex.Transaction, actor: Actor, companyId: string | null, r: ShareRow) {
  return insertAudit(db, actor, { action: 'device.share_ended', companyId, deviceId: r.device_id, target: { type: 'share', id: r.id }, details: { userId: r.user_id, role: r.role, reason: r.end_reason } });
}

const companyOf = async (db: Db | Knex.Transaction, deviceId: string) => ((await db('devices').where({ id: deviceId }).first('company_id')) as { company_id: string | null } | undefined)?.company_id ?? null;

/** The columns of an end: a share already past its expiry ended then, as expired, whatever ends it now. */
const ending = (trx: Knex.Transaction, reason: ShareEndReason) => ({
  ended_at: trx.raw('LEAST(now(), COALESCE(expires_at, now()))'),
  end_reason: trx.raw("CASE WHEN expires_at <= now() THEN 'expired' ELSE ? END", [reason]),
});

/**
 * Ends one share; the share as it ended, or null when it had ended already (a repeat, a race
 * with its timer or an unpair).
 */
export async function endShare(db: Db, id: string, reason: ShareEndReason, actor: Actor): Promise<Share | null> {
  return db.transaction(async (trx) => {
    const ended: ShareRow[] = await trx('device_shares')
      .where({ id })
      .whereNull('ended_at')
      .update(ending(trx, reason))
      .returning('*');
    const r = ended[0];
    if (!r) return null;
    await auditEnd(trx, actor, await companyOf(trx, r.device_id), r);
    return toShare(r);
  });
}

/** Ends every open share of a device (it was unpaired); the IDs of those it ended. */
export async function endDeviceShares(db: Db, deviceId: string, reason: ShareEndReason, actor: Actor): Promise<string[]> {
  return db.transaction(async (trx) => {
    const ended: ShareRow[] = await trx('device_shares').where({ device_id: deviceId }).whereNull('ended_at').update(ending(trx, reason)).returning('*');
    const companyId = ended.length ? await companyOf(trx, deviceId) : null;
    for (const r of ended) await auditEnd(trx, actor, companyId, r);
    return ended.map((r) => r.id);
  });
}
