// Monitoring (stage 5): alerts raised by devices ($state = alert) and by threshold rules, and the
// rules themselves. The bridge evaluates rules as values arrive; a new rule reaches it at once
// (Postgres NOTIFY).
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { alertRuleBody, alertRuleSchema, alertRulesQuery, alertSchema, alertsQuery, deviceAlertsQuery, deviceParams, errorResponse, idParams, page } from '../schemas';
import { NotFoundError } from '../../domain/errors';
import { createAlertRule, deleteAlertRule, getAlertRule, listAlertRules, listAlerts } from '../../db/repositories/alerts';
import { requireDevice } from '../require-device';

export function alertRoutes(d: ApiDeps) {
  return [
    route({
      method: 'get',
      path: '/alerts',
      tag: 'monitoring',
      summary: 'Alerts, newest first, by device and state',
      permission: 'devices:telemetry',
      query: alertsQuery,
      responses: { 200: { description: 'a page of alerts', schema: page(alertSchema) } },
      handler: async ({ query }) => listAlerts(d.db, query),
    }),

    route({
      method: 'get',
      path: '/devices/:id/alerts',
      tag: 'monitoring',
      summary: "A device's alerts, newest first",
      permission: 'devices:telemetry',
      params: deviceParams,
      query: deviceAlertsQuery,
      responses: { 200: { description: 'a page of alerts', schema: page(alertSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query }) => {
        await requireDevice(d.db, params.id);
        return listAlerts(d.db, { ...query, deviceId: params.id });
      },
    }),

    route({
      method: 'get',
      path: '/alert-rules',
      tag: 'monitoring',
      summary: 'Threshold rules',
      permission: 'devices:telemetry',
      query: alertRulesQuery,
      responses: { 200: { description: 'a page of rules', schema: page(alertRuleSchema) } },
      handler: async ({ query }) => listAlertRules(d.db, query),
    }),

    route({
      method: 'post',
      path: '/alert-rules',
      tag: 'monitoring',
      summary: 'Create a threshold rule on one property (of one device, one model, or every device)',
      permission: 'alerts:manage',
      body: alertRuleBody,
      status: 201,
      responses: { 201: { description: 'the rule; it applies to the next value', schema: alertRuleSchema }, 404: errorResponse('no such device') },
      handler: async ({ body, principal }) => {
        if (body.deviceId) await requireDevice(d.db, body.deviceId);
        return createAlertRule(d.db, { ...body, companyId: principal.companyId, createdBy: principal.tokenId });
      },
    }),

    route({
      method: 'get',
      path: '/alert-rules/:id',
      tag: 'monitoring',
      summary: 'One threshold rule',
      permission: 'devices:telemetry',
      params: idParams,
      responses: { 200: { description: 'the rule', schema: alertRuleSchema }, 404: errorResponse('no such rule') },
      handler: async ({ params }) => {
        const r = await getAlertRule(d.db, params.id);
        if (!r) throw new NotFoundError('alert rule', params.id);
        return r;
      },
    }),

    route({
      method: 'delete',
      path: '/alert-rules/:id',
      tag: 'monitoring',
      summary: 'Delete a threshold rule (its alerts stay, detached)',
      permission: 'alerts:manage',
      params: idParams,
      status: 204,
      responses: { 204: { description: 'deleted' }, 404: errorResponse('no such rule') },
      handler: async ({ params }) => {
        if (!(await deleteAlertRule(d.db, params.id))) throw new NotFoundError('alert rule', params.id);
        return undefined;
      },
    }),
  ];
}
