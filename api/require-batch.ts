// The one place a route looks a batch up: it must exist and belong to a company where the caller
// holds the route's permission (else 404 / 403, as for devices).
import type { Db } from '../db/knex';
import type { Batch } from '../domain/model';
import { getBatch } from '../db/repositories/batches';
import type { Access } from './http/route';
import { enforce } from './enforce';

export async function requireBatch(db: Db, access: Access, id: string): Promise<Batch> {
  const batch = await getBatch(db, id);
  enforce(access, batch && { kind: 'company', companyId: batch.companyId }, 'batch', id);
  return batch!;
}
