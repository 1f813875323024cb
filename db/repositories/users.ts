// Users: an email (stored lowercased), a name, a scrypt password hash (domain/passwords.ts) that
// never leaves this module's callers in a response, and whether they are a platform admin.
import type { Db } from '../knex';
import { BOOTSTRAP_ADMIN_SETTING } from '../migrations/004_people';

export interface User {
  id: string;
  email: string;
  name: string | null;
  platformAdmin: boolean;
  createdAt: string;
}

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  password_hash: string | null;
  platform_admin: boolean;
  created_by: string | null;
  created_at: Date;
}

const toUser = (r: UserRow): User => ({ id: r.id, email: r.email, name: r.name, platformAdmin: r.platform_admin, createdAt: r.created_at.toISOString() });

export const normalEmail = (email: string) => email.trim().toLowerCase();

/** null when the email is taken. */
export async function insertUser(
  db: Db,
  u: { id: string; email: string; name?: string | null; passwordHash: string | null; platformAdmin?: boolean; createdBy: string | null },
): Promise<User | null> {
  const rows: UserRow[] = await db('users')
    .insert({ id: u.id, email: normalEmail(u.email), name: u.name ?? null, password_hash: u.passwordHash, platform_admin: u.platformAdmin ?? false, created_by: u.createdBy })
    .onConflict('email')
    .ignore()
    .returning('*');
  return rows[0] ? toUser(rows[0]) : null;
}

export async function getUser(db: Db, id: string): Promise<User | null> {
  const r: UserRow | undefined = await db('users').where({ id }).first();
  return r ? toUser(r) : null;
}

/** The account with exactly this email (compared without regard to case), or null. */
export async function findUserByEmail(db: Db, email: string): Promise<User | null> {
  const r: UserRow | undefined = await db('users').where({ email: normalEmail(email) }).first();
  return r ? toUser(r) : null;
}

/** For sign-in: the user and their password hash. */
export async function findUserForSignIn(db: Db, email: string): Promise<{ user: User; passwordHash: string | null } | null> {
  const r: UserRow | undefined = await db('users').where({ email: normalEmail(email) }).first();
  return r ? { user: toUser(r), passwordHash: r.password_hash } : null;
}

/** The platform admin made on first start (ADMIN_TOKEN acts as this user); null before it exists. */
export async function bootstrapAdminId(db: Db): Promise<string | null> {
  const row = await db('settings').where({ key: BOOTSTRAP_ADMIN_SETTING }).first('value');
  return row ? (row.value as string) : null;
}

/** The user's password hash (null: the account has none, e.g. the platform admin made on first start). */
export async function passwordHashOf(db: Db, id: string): Promise<string | null> {
  const r = (await db('users').where({ id }).first('password_hash')) as { password_hash: string | null } | undefined;
  return r?.password_hash ?? null;
}

export async function setPasswordHash(db: Db, id: string, hash: string): Promise<void> {
  await db('users').where({ id }).update({ password_hash: hash });
}
