// The one lookup of a company for a route: it exists and the caller holds the route's permission
// in it (else 404 / 403, as for devices and batches).
import type { Db } from '../db/knex';
import { getCompany, type Company } from '../db/repositories/companies';
import type { Access } from './http/route';
import { enforce } from './enforce';

export async function requireCompany(db: Db, access: Access, id: string): Promise<Company> {
  const company = await getCompany(db, id);
  enforce(access, company && { kind: 'company', companyId: company.id }, 'company', id);
  return company!;
}
