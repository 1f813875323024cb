// Companies (created by platform admins) and participations: a user's role in a company.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { companySchema, createCompanyBody, errorResponse, idParams, page, pageQuery, participationBody, participationParams, participationSchema } from '../schemas';
import { ConflictError, NotFoundError } from '../../domain/errors';
import type { Db } from '../../db/knex';
import type { CompanyRole } from '../../domain/roles';
import { newEntityId } from '../../domain/ids';
import { countAdmins, deleteParticipation, getParticipation, roleIn, insertCompany, listCompanies, listParticipations, upsertParticipation, withCompanyLock } from '../../db/repositories/companies';
import { getUser } from '../../db/repositories/users';
import { audit } from '../audit';
import { requireCompany } from '../require-company';
import { listScope } from '../http/policy';

/** A company keeps at least one admin of its own: its last admin cannot be removed or demoted. */
async function assertNotLastAdmin(db: Db, companyId: string, current: CompanyRole | null): Promise<void> {
  if (current === 'admin' && (await countAdmins(db, companyId)) <= 1) {
    throw new ConflictError('last_admin', 'this is the company\'s last admin: make another user admin first');
  }
}

export function companyRoutes(d: ApiDeps) {
  return [
    route({
      method: 'post',
      path: '/companies',
      tag: 'people',
      summary: 'Create a company (platform admins)',
      permission: 'companies:create',
      body: createCompanyBody,
      status: 201,
      responses: { 201: { description: 'the company', schema: companySchema, headers: { Location: 'the company' } } },
      handler: async ({ res, body, principal }) => {
        const company = await insertCompany(d.db, { id: newEntityId(), name: body.name, createdBy: principal.userId });
        await audit(d.db, principal, { action: 'company.created', companyId: company.id, target: { type: 'company', id: company.id } });
        res.location(`/api/v1/companies/${company.id}`);
        return company;
      },
    }),

    route({
      method: 'get',
      path: '/companies',
      tag: 'people',
      summary: 'The companies the caller has a role in (a platform admin: all)',
      permission: 'self',
      query: z.object({ ...pageQuery }).strict(),
      responses: { 200: { description: 'a page of companies', schema: page(companySchema) } },
      handler: async ({ query, principal }) => {
        const scope = listScope(principal, 'companies:read');
        return listCompanies(d.db, { ...query, only: scope ? scope.companyIds : undefined });
      },
    }),

    route({
      method: 'get',
      path: '/companies/:id',
      tag: 'people',
      summary: 'One company',
      permission: 'companies:read',
      params: idParams,
      responses: { 200: { description: 'the company', schema: companySchema }, 404: errorResponse('no such company, or the caller has no role in it') },
      handler: async ({ params, access }) => requireCompany(d.db, access, params.id),
    }),

    route({
      method: 'post',
      path: '/companies/:id/participations',
      tag: 'people',
      summary: "Give a user a role in the company (or change their role there): admin, manufacturer, technician or viewer",
      permission: 'participations:manage',
      params: idParams,
      body: participationBody,
      status: 201,
      responses: {
        201: { description: 'the participation', schema: participationSchema },
        403: errorResponse("the caller is not an admin of this company (needs 'participations:manage')"),
        404: errorResponse('no such company (or the caller has no role in it), or no such user'),
        409: errorResponse("the change would leave the company without an admin (last_admin)"),
      },
      handler: async ({ params, body, access, principal }) => {
        await requireCompany(d.db, access, params.id);
        if (!(await getUser(d.db, body.userId))) throw new NotFoundError('user', body.userId);
        const p = await withCompanyLock(d.db, params.id, async (trx) => {
          if (body.role !== 'admin') await assertNotLastAdmin(trx, params.id, await roleIn(trx, params.id, body.userId));
          return upsertParticipation(trx, { id: newEntityId(), companyId: params.id, userId: body.userId, role: body.role, createdBy: principal.userId });
        });
        await audit(d.db, principal, { action: 'participation.set', companyId: params.id, target: { type: 'user', id: body.userId }, details: { role: body.role, participationId: p.id } });
        return p;
      },
    }),

    route({
      method: 'get',
      path: '/companies/:id/participations',
      tag: 'people',
      summary: "The company's members and their roles",
      permission: 'participations:manage',
      params: idParams,
      query: z.object({ ...pageQuery }).strict(),
      responses: { 200: { description: 'a page of participations', schema: page(participationSchema) }, 404: errorResponse('no such company, or the caller has no role in it') },
      handler: async ({ params, query, access }) => {
        await requireCompany(d.db, access, params.id);
        return listParticipations(d.db, params.id, query);
      },
    }),

    route({
      method: 'delete',
      path: '/companies/:id/participations/:participationId',
      tag: 'people',
      summary: "Take a user's role in the company away (their tokens for it lose it too, within 5 seconds)",
      permission: 'participations:manage',
      params: participationParams,
      status: 204,
      responses: { 204: { description: 'removed' }, 404: errorResponse('no such company or participation'), 409: errorResponse("the company's last admin (last_admin)") },
      handler: async ({ params, access, principal }) => {
        await requireCompany(d.db, access, params.id);
        const p = await withCompanyLock(d.db, params.id, async (trx) => {
          const found = await getParticipation(trx, params.id, params.participationId);
          if (found) await assertNotLastAdmin(trx, params.id, found.role);
          if (!found || !(await deleteParticipation(trx, params.id, params.participationId))) throw new NotFoundError('participation', params.participationId);
          return found;
        });
        await audit(d.db, principal, { action: 'participation.removed', companyId: params.id, target: { type: 'user', id: p.userId }, details: { role: p.role, participationId: p.id } });
        return undefined;
      },
    }),
  ];
}
