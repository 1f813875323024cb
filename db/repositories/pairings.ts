// Pairing attempts and the wrong-code record behind the pairing rate limit. Every write is
// idempotent (the pairing workflow's activities may run twice), and a finished attempt never
// changes again.
import type { Db } from '../knex';
import { insertAudit } from './audit';
import type { DeviceStatus } from '../../domain/device-status';
import type { PairingView } from '../../domain/messages';
import { PAIRING_ATTEMPT_LIMITS, type FinishedPairingStatus, type PairingStatus } from '../../domain/pairing';
import { safeEqual } from '../../domain/credentials';

interface PairingRow {
  id: string;
  device_id: string;
  user_id: string;
  status: PairingStatus;
  expires_at: Date;
  created_at: Date;
  finished_at: Date | null;
}

export interface Pairing extends PairingView {
  createdAt: string;
  finishedAt: string | null;
}

function toPairing(r: PairingRow): Pairing {
  return {
    id: r.id,
    deviceId: r.device_id,
    userId: r.user_id,
    status: r.status,
    expiresAt: r.expires_at.toISOString(),
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
  };
}

/** For GET /pairings/{id}: the attempt as Postgres has it (null when there is none). */
export async function getPairing(db: Db, id: string): Promise<Pairing | null> {
  const row: PairingRow | undefined = await db('pairings').where({ id }).first();
  return row ? toPairing(row) : null;
}

/** Records an accepted attempt as pending; a repeat of the same attempt is a no-op. */
export async function insertPairing(db: Db, p: PairingView & { createdAt: string }): Promise<void> {
  await db('pairings')
    .insert({ id: p.id, device_id: p.deviceId, user_id: p.userId, status: 'pending', expires_at: p.expiresAt, created_at: p.createdAt })
    .onConflict('id')
    .ignore();
}

/** Ends a pending attempt (a repeat, or an attempt already ended, changes nothing). */
export async function finishPairing(db: Db, id: string, status: FinishedPairingStatus, at: string): Promise<void> {
  await db('pairings').where({ id, status: 'pending' }).update({ status, finished_at: at });
}

/**
 * The device's owner, the attempt's end and its audit record, in one transaction: nobody sees one
 * without the others. A retry finds the attempt no longer pending and records nothing twice.
 */
export async function completePairing(db: Db, p: { pairingId: string; deviceId: string; userId: string; at: string }): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('devices').where({ id: p.deviceId }).update({ owner_id: p.userId });
    const ended = await trx('pairings').where({ id: p.pairingId, status: 'pending' }).update({ status: 'paired', finished_at: p.at });
    if (ended === 0) return;
    const device = (await trx('devices').where({ id: p.deviceId }).first('company_id')) as { company_id: string | null } | undefined;
    await insertAudit(trx, { userId: p.userId, credentialId: null }, { action: 'device.paired', companyId: device?.company_id ?? null, deviceId: p.deviceId, target: { type: 'pairing', id: p.pairingId } });
  });
}

/** Clears the owner, only if it is still `ownerId` (an unpair retried after a new pairing must not undo it). */
export async function clearOwner(db: Db, deviceId: string, ownerId: string): Promise<void> {
  await db('devices').where({ id: deviceId, owner_id: ownerId }).update({ owner_id: null });
}

export interface PairingFacts {
  status: DeviceStatus;
  blocked: boolean;
  ownerId: string | null;
}

export async function pairingFacts(db: Db, deviceId: string): Promise<PairingFacts | null> {
  const row = await db('devices').where({ id: deviceId }).first('status', 'blocked', 'owner_id');
  return row ? { status: row.status, blocked: row.blocked, ownerId: row.owner_id } : null;
}

export type CodeCheck =
  | { ok: true }
  | { ok: false; refusal: 'unknown_device' | 'wrong_pairing_code' }
  | { ok: false; refusal: 'too_many_attempts'; retryAfterS: number; scope: 'device' | 'user' };

/**
 * Checks a pairing code (given as its SHA-256) against the device's, under the rate limits of
 * domain/pairing.ts, and records a wrong one. The limits are checked before the code: once a
 * window is full even the right code is refused until it passes. Advisory locks on the device and
 * the user (always in that order) make concurrent guesses count one after another, so a burst
 * cannot slip past the limit.
 */
export async function checkPairingCode(db: Db, a: { deviceId: string; userId: string; codeHash: string }): Promise<CodeCheck> {
  const { perDevice, perUser } = PAIRING_ATTEMPT_LIMITS;
  return db.transaction(async (trx) => {
    await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('pairing-device:' || ?))`, [a.deviceId]);
    await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('pairing-user:' || ?))`, [a.userId]);
    // When the window frees a slot: the oldest failure that still counts, plus the window.
    const windowed = async (column: 'device_id' | 'user_id', value: string, max: number, windowS: number): Promise<number | null> => {
      const r = await trx.raw<{ rows: { n: string; retry_s: number | null }[] }>(
        `SELECT count(*) AS n,
                ceil(extract(epoch FROM (min(at) FILTER (WHERE rn = ?) + make_interval(secs => ?) - now())))::int AS retry_s
           FROM (SELECT at, row_number() OVER (ORDER BY at DESC) AS rn
                   FROM pairing_failures WHERE ${column} = ? AND at > now() - make_interval(secs => ?)) f`,
        [max, windowS, value, windowS],
      );
      const row = r.rows[0]!;
      return Number(row.n) >= max ? Math.max(1, row.retry_s ?? windowS) : null;
    };
    const device = await trx('devices').where({ id: a.deviceId }).first('pairing_code_hash');
    const userWait = await windowed('user_id', a.userId, perUser.max, perUser.windowS);
    if (userWait !== null) return { ok: false, refusal: 'too_many_attempts', retryAfterS: userWait, scope: 'user' } as const;
    if (!device) {
      await trx('pairing_failures').insert({ device_id: null, user_id: a.userId });
      return { ok: false, refusal: 'unknown_device' } as const;
    }
    const deviceWait = await windowed('device_id', a.deviceId, perDevice.max, perDevice.windowS);
    if (deviceWait !== null) return { ok: false, refusal: 'too_many_attempts', retryAfterS: deviceWait, scope: 'device' } as const;
    if (!safeEqual(device.pairing_code_hash as string, a.codeHash)) {
      await trx('pairing_failures').insert({ device_id: a.deviceId, user_id: a.userId });
      return { ok: false, refusal: 'wrong_pairing_code' } as const;
    }
    return { ok: true } as const;
  });
}
