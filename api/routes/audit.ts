// The audit log: who did what, newest first, per device or per company, as far as the caller may see.
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { auditQuery, auditSchema, errorResponse, page } from '../schemas';
import { listAudit } from '../../db/repositories/audit';
import { listScope } from '../http/policy';
import { requireDevice } from '../require-device';
import { requireCompany } from '../require-company';

export function auditRoutes(d: ApiDeps) {
  return [
    route({
      method: 'get',
      path: '/audit',
      tag: 'audit',
      summary: "Who did what, newest first: a company's (company admins), a device's, or everything (platform admins)",
      permission: 'audit:read',
      query: auditQuery,
      responses: { 200: { description: 'a page of audit events', schema: page(auditSchema) }, 404: errorResponse('no such device or company, or the caller has no role in it') },
      handler: async ({ query, access, principal }) => {
        if (query.deviceId) await requireDevice(d.db, access, query.deviceId);
        if (query.companyId) await requireCompany(d.db, access, query.companyId);
        const scope = listScope(principal, 'audit:read');
        return listAudit(d.db, { ...query, scope: scope && { companyIds: scope.companyIds, userId: scope.userId } });
      },
    }),
  ];
}
