// The first platform admin: a user made on the very first start (recorded in settings, so it is
// made once however many API instances start together). With ADMIN_TOKEN set, that token acts as
// this user and nothing else is made. Otherwise one API token of this user is created, printed
// once and written to DATA_DIR/admin-token (0600) so that a new user can find it (as Jenkins'
// initialAdminPassword). The user has no password: give the platform a named admin with
// POST /users {platformAdmin: true} and sign in as them.
import fs from 'node:fs';
import path from 'node:path';
import { newApiToken, sha256Hex } from '../domain/credentials';
import { newEntityId } from '../domain/ids';
import type { Db } from '../db/knex';
import { BOOTSTRAP_ADMIN_SETTING } from '../db/migrations/004_people';
import { insertToken } from '../db/repositories/tokens';
import { bootstrapAdminId, insertUser } from '../db/repositories/users';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const BOOTSTRAP_ADMIN_EMAIL = 'admin@localhost';

/** Returns the new token when this call created the admin and no ADMIN_TOKEN was given; else null. */
export async function ensureBootstrapAdmin(db: Db, dataDir: string, envToken: string | undefined): Promise<string | null> {
  return db.transaction(async (trx) => {
    // Serialise concurrent first starts (several api instances): only one creates the admin.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', ['rdm:bootstrap-admin']);
    if (await bootstrapAdminId(trx)) return null;
    const user = await insertUser(trx, { id: newEntityId(), email: BOOTSTRAP_ADMIN_EMAIL, name: 'platform admin', passwordHash: null, platformAdmin: true, createdBy: 'bootstrap' });
    if (!user) throw new Error(`cannot create the platform admin: a user ${BOOTSTRAP_ADMIN_EMAIL} already exists`);
    await trx('settings').insert({ key: BOOTSTRAP_ADMIN_SETTING, value: user.id });
    if (envToken) return null;
    const token = newApiToken();
    await insertToken(trx, { id: newEntityId(), name: 'bootstrap admin', tokenHash: sha256Hex(token), userId: user.id, createdBy: 'bootstrap' });
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), token + '\n', { mode: 0o600 });
    return token;
  });
}
