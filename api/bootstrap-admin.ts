// The first platform admin. With ADMIN_TOKEN set, that token is the admin and nothing is made.
// Otherwise, on the very first start, one admin token is created, printed once and written to
// DATA_DIR/admin-token (0600) so that a new user can find it (as Jenkins' initialAdminPassword).
import fs from 'node:fs';
import path from 'node:path';
import { newApiToken, sha256Hex } from '../domain/credentials';
import { newEntityId } from '../domain/ids';
import type { Db } from '../db/knex';
import { insertToken } from '../db/repositories/tokens';

export const ADMIN_TOKEN_FILE = 'admin-token';

/** Returns the new token when this call created it; null when an admin already existed. */
export async function ensureBootstrapAdmin(db: Db, dataDir: string, envToken: string | undefined): Promise<string | null> {
  if (envToken) return null;
  return db.transaction(async (trx) => {
    // Serialise concurrent first starts (several api instances): only one creates the admin.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', ['rdm:bootstrap-admin']);
    const existing = await trx('tokens').where({ kind: 'admin' }).first('id');
    if (existing) return null;
    const token = newApiToken();
    await insertToken(trx, { id: newEntityId(), kind: 'admin', name: 'bootstrap admin', tokenHash: sha256Hex(token), createdBy: 'bootstrap' });
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), token + '\n', { mode: 0o600 });
    return token;
  });
}
