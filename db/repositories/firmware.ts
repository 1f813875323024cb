// Firmware releases (db/migrations/008_firmware.ts). A release row appears only once its image is
// stored and signed; same company, model and version twice is a conflict (409), never a second image.
import type { Db } from '../knex';
import { insertAudit } from './audit';
import { decodeCursor, toPage, type Page } from '../pagination';
import { ConflictError } from '../../domain/errors';
import type { Channel, FirmwareRelease } from '../../domain/firmware';
import { compareSemVer } from '../../domain/semver';

interface ReleaseRow {
  id: string;
  company_id: string;
  model: string;
  version: string;
  size: string | number;
  sha256: string;
  signature: string;
  key_fingerprint: string;
  channel: Channel;
  notes: string | null;
  storage_key: string;
  created_by: string;
  created_at: Date;
  promoted_at: Date | null;
  promoted_by: string | null;
}

const toRelease = (r: ReleaseRow): FirmwareRelease => ({
  id: r.id,
  companyId: r.company_id,
  model: r.model,
  version: r.version,
  size: Number(r.size),
  sha256: r.sha256,
  signature: r.signature,
  keyFingerprint: r.key_fingerprint,
  channel: r.channel,
  notes: r.notes,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  promotedAt: r.promoted_at ? r.promoted_at.toISOString() : null,
  promotedBy: r.promoted_by,
});

type Actor = { userId: string | null; credentialId: string | null };

export type NewRelease = Omit<FirmwareRelease, 'channel' | 'createdAt' | 'promotedAt' | 'promotedBy'> & { storageKey: string };

/** Whether this company already has that model and version (checked before an upload is stored, and again at insert). */
export async function releaseExists(db: Db, companyId: string, model: string, version: string): Promise<boolean> {
  return (await db('firmware_releases').where({ company_id: companyId, model, version }).first('id')) !== undefined;
}

export async function insertRelease(db: Db, r: NewRelease, actor: Actor): Promise<FirmwareRelease> {
  return db.transaction(async (trx) => {
    const rows: ReleaseRow[] = await trx('firmware_releases')
      .insert({
        id: r.id,
        company_id: r.companyId,
        model: r.model,
        version: r.version,
        size: r.size,
        sha256: r.sha256,
        signature: r.signature,
        key_fingerprint: r.keyFingerprint,
        notes: r.notes,
        storage_key: r.storageKey,
        created_by: r.createdBy,
      })
      .onConflict(['company_id', 'model', 'version'])
      .ignore()
      .returning('*');
    if (rows.length === 0) throw new ConflictError('firmware_exists', `model '${r.model}' already has a release ${r.version}`);
    await insertAudit(trx, actor, { action: 'firmware.uploaded', companyId: r.companyId, target: { type: 'firmware', id: r.id }, details: { model: r.model, version: r.version, size: r.size, sha256: r.sha256 } });
    return toRelease(rows[0]!);
  });
}

export async function getRelease(db: Db, id: string): Promise<(FirmwareRelease & { storageKey: string }) | null> {
  const row: ReleaseRow | undefined = await db('firmware_releases').where({ id }).first();
  return row ? { ...toRelease(row), storageKey: row.storage_key } : null;
}

/** Releases newest first, of these companies (null: all), maybe of one model and channel. */
export async function listReleases(db: Db, o: { companyIds: string[] | null; model?: string; channel?: Channel; limit: number; cursor?: string }): Promise<Page<FirmwareRelease>> {
  const q = db('firmware_releases').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(o.limit + 1);
  if (o.companyIds) q.whereIn('company_id', o.companyIds);
  if (o.model) q.where({ model: o.model });
  if (o.channel) q.where({ channel: o.channel });
  if (o.cursor) {
    const [at, id] = decodeCursor(o.cursor, ['timestamp', 'string'] as const);
    q.whereRaw('(created_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows: ReleaseRow[] = await q;
  return toPage(rows, o.limit, toRelease, (r) => [r.created_at.toISOString(), r.id]);
}

/** Moves a release to `stable`; promoting a stable one again changes nothing (and records nothing). */
export async function promoteRelease(db: Db, id: string, channel: Channel, actor: Actor): Promise<FirmwareRelease | null> {
  return db.transaction(async (trx) => {
    const rows: ReleaseRow[] = await trx('firmware_releases').where({ id }).whereNot({ channel }).update({ channel, promoted_at: trx.fn.now(), promoted_by: actor.userId }).returning('*');
    const r = rows[0];
    if (r) await insertAudit(trx, actor, { action: 'firmware.promoted', companyId: r.company_id, target: { type: 'firmware', id: r.id }, details: { model: r.model, version: r.version, channel } });
    const now: ReleaseRow | undefined = r ?? (await trx('firmware_releases').where({ id }).first());
    return now ? toRelease(now) : null;
  });
}

/** The newest `stable` release of a company's model by semantic version (what auto-updates install), or null. */
export async function latestStable(db: Db, companyId: string, model: string): Promise<FirmwareRelease | null> {
  const rows: ReleaseRow[] = await db('firmware_releases').where({ company_id: companyId, model, channel: 'stable' });
  if (rows.length === 0) return null;
  rows.sort((a, b) => compareSemVer(b.version, a.version));
  return toRelease(rows[0]!);
}
