// The audit log: append-only; read newest first, per device or per company, by keyset on id.
import type { Db } from '../knex';
import type { AuditAction, AuditEvent } from '../../domain/audit';
import { decodeCursor, toPage, type Page } from '../pagination';

export interface AuditRecord {
  id: string;
  at: string;
  actor: { userId: string | null; credentialId: string | null };
  action: AuditAction;
  companyId: string | null;
  deviceId: string | null;
  batchId: string | null;
  target: { type: string; id: string } | null;
  details: Record<string, unknown> | null;
}

interface AuditRow {
  id: string;
  at: Date;
  actor_user_id: string | null;
  actor_credential: string | null;
  action: AuditAction;
  company_id: string | null;
  device_id: string | null;
  batch_id: string | null;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown> | null;
}

const toRecord = (r: AuditRow): AuditRecord => ({
  id: String(r.id),
  at: r.at.toISOString(),
  actor: { userId: r.actor_user_id, credentialId: r.actor_credential },
  action: r.action,
  companyId: r.company_id,
  deviceId: r.device_id,
  batchId: r.batch_id,
  target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
  details: r.details,
});

export async function insertAudit(db: Db, actor: { userId: string | null; credentialId: string | null }, e: AuditEvent): Promise<void> {
  await db('audit_events').insert({
    actor_user_id: actor.userId,
    actor_credential: actor.credentialId,
    action: e.action,
    company_id: e.companyId ?? null,
    device_id: e.deviceId ?? null,
    batch_id: e.batchId ?? null,
    target_type: e.target?.type ?? null,
    target_id: e.target?.id ?? null,
    details: e.details ? JSON.stringify(e.details) : null,
  });
}

export interface AuditFilter {
  deviceId?: string;
  companyId?: string;
  /** From the policy: null = everything; else events of these companies, and the user's own acts outside any company. */
  scope: { companyIds: string[]; userId: string | null } | null;
  limit: number;
  cursor?: string;
}

export async function listAudit(db: Db, f: AuditFilter): Promise<Page<AuditRecord>> {
  const q = db('audit_events').orderBy('id', 'desc').limit(f.limit + 1);
  if (f.deviceId) q.where('device_id', f.deviceId);
  if (f.companyId) q.where('company_id', f.companyId);
  if (f.scope) {
    const { companyIds, userId } = f.scope;
    q.where((w) => {
      w.whereIn('company_id', companyIds);
      if (userId) {
        w.orWhere((own) => {
          own.where('actor_user_id', userId).whereNull('company_id').whereNull('device_id');
        });
      }
    });
  }
  if (f.cursor) q.where('id', '<', decodeCursor(f.cursor, ['integer'] as const)[0]);
  return toPage((await q) as AuditRow[], f.limit, toRecord, (r) => [Number(r.id)]);
}
