// Records who did what (db/repositories/audit.ts) for the caller of a request. Awaited: an act the
// log cannot record answers 500, so nothing done through the API goes unrecorded silently.
import type { Db } from '../db/knex';
import type { AuditEvent } from '../domain/audit';
import { insertAudit } from '../db/repositories/audit';
import type { Principal } from './http/policy';

export function audit(db: Db, by: Principal | null, event: AuditEvent): Promise<void> {
  return insertAudit(db, { userId: by?.userId ?? null, credentialId: by?.credentialId ?? null }, event);
}
