// Companies and participations (a user's one role in a company).
import type { Db } from '../knex';
import type { CompanyRole } from '../../domain/roles';
import { decodeCursor, toPage, type Page } from '../pagination';

export interface Company {
  id: string;
  name: string;
  createdAt: string;
}

export interface Participation {
  id: string;
  companyId: string;
  userId: string;
  email: string;
  role: CompanyRole;
  createdAt: string;
}

interface CompanyRow {
  id: string;
  name: string;
  created_at: Date;
}
interface ParticipationRow {
  id: string;
  company_id: string;
  user_id: string;
  email: string;
  role: CompanyRole;
  created_at: Date;
}

const toCompany = (r: CompanyRow): Company => ({ id: r.id, name: r.name, createdAt: r.created_at.toISOString() });
const toParticipation = (r: ParticipationRow): Participation => ({ id: r.id, companyId: r.company_id, userId: r.user_id, email: r.email, role: r.role, createdAt: r.created_at.toISOString() });

export async function insertCompany(db: Db, c: { id: string; name: string; createdBy: string }): Promise<Company> {
  const [row] = await db('companies').insert({ id: c.id, name: c.name, created_by: c.createdBy }).returning('*');
  return toCompany(row as CompanyRow);
}

export async function getCompany(db: Db, id: string): Promise<Company | null> {
  const r: CompanyRow | undefined = await db('companies').where({ id }).first();
  return r ? toCompany(r) : null;
}

/** Companies by ID; `only` (when given) limits the list to those IDs. */
export async function listCompanies(db: Db, f: { only?: string[]; limit: number; cursor?: string }): Promise<Page<Company>> {
  const q = db('companies').orderBy('id').limit(f.limit + 1);
  if (f.only) q.whereIn('id', f.only);
  if (f.cursor) q.where('id', '>', decodeCursor(f.cursor, ['string'] as const)[0]);
  return toPage((await q) as CompanyRow[], f.limit, toCompany, (r) => [r.id]);
}

const participationColumns = ['p.id', 'p.company_id', 'p.user_id', 'u.email', 'p.role', 'p.created_at'];

/**
 * Runs `fn` in a transaction holding the company's row lock: changes to its participations take
 * turns, so a rule over all of them (it keeps one admin) cannot be broken by two at once.
 */
export async function withCompanyLock<T>(db: Db, companyId: string, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    await trx.raw('SELECT 1 FROM companies WHERE id = ? FOR UPDATE', [companyId]);
    return fn(trx);
  });
}

/** Adds the user to the company, or changes their role there. */
export async function upsertParticipation(db: Db, p: { id: string; companyId: string; userId: string; role: CompanyRole; createdBy: string }): Promise<Participation> {
  await db('participations')
    .insert({ id: p.id, company_id: p.companyId, user_id: p.userId, role: p.role, created_by: p.createdBy })
    .onConflict(['company_id', 'user_id'])
    .merge(['role']);
  const row = await db('participations as p').join('users as u', 'u.id', 'p.user_id').where({ 'p.company_id': p.companyId, 'p.user_id': p.userId }).first(participationColumns);
  return toParticipation(row as ParticipationRow);
}

export async function getParticipation(db: Db, companyId: string, id: string): Promise<Participation | null> {
  const row = await db('participations as p').join('users as u', 'u.id', 'p.user_id').where({ 'p.company_id': companyId, 'p.id': id }).first(participationColumns);
  return row ? toParticipation(row as ParticipationRow) : null;
}

export async function listParticipations(db: Db, companyId: string, f: { limit: number; cursor?: string }): Promise<Page<Participation>> {
  const q = db('participations as p').join('users as u', 'u.id', 'p.user_id').where('p.company_id', companyId).orderBy('p.id').limit(f.limit + 1).select(participationColumns);
  if (f.cursor) q.where('p.id', '>', decodeCursor(f.cursor, ['string'] as const)[0]);
  return toPage((await q) as ParticipationRow[], f.limit, toParticipation, (r) => [r.id]);
}

export async function deleteParticipation(db: Db, companyId: string, id: string): Promise<boolean> {
  return (await db('participations').where({ company_id: companyId, id }).delete()) > 0;
}

/** The user's role in the company, if any. */
export async function roleIn(db: Db, companyId: string, userId: string): Promise<CompanyRole | null> {
  const row = await db('participations').where({ company_id: companyId, user_id: userId }).first('role');
  return row ? (row.role as CompanyRole) : null;
}

/** How many admins the company has. */
export async function countAdmins(db: Db, companyId: string): Promise<number> {
  const row = await db('participations').where({ company_id: companyId, role: 'admin' }).count<{ n: string }[]>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** A user's role in each of their companies. */
export async function rolesOf(db: Db, userId: string): Promise<Record<string, CompanyRole>> {
  const rows: { company_id: string; role: CompanyRole }[] = await db('participations').where({ user_id: userId }).select('company_id', 'role');
  return Object.fromEntries(rows.map((r) => [r.company_id, r.role]));
}

export async function participationsOfUser(db: Db, userId: string): Promise<(Participation & { companyName: string })[]> {
  const rows = await db('participations as p')
    .join('users as u', 'u.id', 'p.user_id')
    .join('companies as c', 'c.id', 'p.company_id')
    .where('p.user_id', userId)
    .orderBy('p.id')
    .select([...participationColumns, 'c.name as company_name']);
  return (rows as (ParticipationRow & { company_name: string })[]).map((r) => ({ ...toParticipation(r), companyName: r.company_name }));
}
