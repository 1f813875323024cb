// Monitoring (stage 5): alerts raised by devices ($state = alert) and by threshold rules, and the
// rules themselves. The bridge evaluates rules as values arrive; a new rule reaches it at once
// (Postgres NOTIFY). A rule belongs to a company and watches that company's devices only
// (bridge/alert-rules.ts); a platform admin's rule without a company watches every device.
// A device's end users see its alerts as they see its properties (api/alert-visibility.ts).
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { alertRuleBody, alertRuleSchema, alertRulesQuery, alertSchema, alertsQuery, deviceAlertsQuery, deviceParams, errorResponse, idParams, page } from '../schemas';
import { ValidationError } from '../../domain/errors';
import { createAlertRule, deleteAlertRule, getAlertRule, listAlertRules, listAlerts, type AlertRule } from '../../db/repositories/alerts';
import { controlTarget } from '../../db/repositories/control-targets';
import { audit } from '../audit';
import { enforce } from '../enforce';
import { companiesWith, listScope } from '../http/policy';
import type { Access } from '../http/route';
import { checkDevice, requireDevice } from '../require-device';
import { seesAlert, visibleAlerts } from '../alert-visibility';
import { visibilityOn } from '../property-visibility';
import { requireCompany } from '../require-company';

export function alertRoutes(d: ApiDeps) {
  async function requireRule(access: Access, id: string): Promise<AlertRule> {
    const r = await getAlertRule(d.db, id);
    enforce(access, r && { kind: 'company', companyId: r.companyId }, 'alert rule', id);
    return r!;
  }

  /** A rule's company: its device's; else the one named; else the caller's only one (a platform admin: none, every device). */
  async function ruleCompany(access: Access, deviceId: string | undefined, named: string | undefined): Promise<string | null> {
    if (deviceId) {
      const device = await checkDevice(d.db, access, deviceId, await controlTarget(d.db, deviceId));
      if (named !== undefined && named !== device.companyId) throw new ValidationError("companyId: not the device's company", [{ path: 'companyId', message: "not the device's company" }]);
      return device.companyId;
    }
    if (named !== undefined) return (await requireCompany(d.db, access, named)).id;
    if (access.principal.platformAdmin) return null;
    const mine = companiesWith(access.principal, access.permission);
    if (mine.length !== 1) throw new ValidationError('companyId: name the company whose devices the rule watches', [{ path: 'companyId', message: 'required: the caller manages rules in several companies' }]);
    return mine[0]!;
  }

  return [
    route({
      method: 'get',
      path: '/alerts',
      tag: 'monitoring',
      summary: "Alerts of the devices the caller may see, newest first, by device and state (a device's end user: those of properties declared visible to them, and the device's own)",
      permission: 'devices:telemetry',
      query: alertsQuery,
      responses: { 200: { description: 'a page of alerts; for a caller who does not see every property it may hold fewer than `limit` (the cursor goes on)', schema: page(alertSchema) } },
      handler: async ({ query, principal }) => {
        const found = await listAlerts(d.db, { ...query, scope: listScope(principal, 'devices:telemetry') });
        return { ...found, items: await visibleAlerts(d.db, principal, found.items) };
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/alerts',
      tag: 'monitoring',
      summary: "A device's alerts, newest first (its end users: those of properties declared visible to them, and the device's own)",
      permission: 'devices:telemetry',
      params: deviceParams,
      query: deviceAlertsQuery,
      responses: { 200: { description: 'a page of alerts; for a caller who does not see every property it may hold fewer than `limit` (the cursor goes on)', schema: page(alertSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        const device = await requireDevice(d.db, access, params.id);
        const found = await listAlerts(d.db, { ...query, deviceId: params.id });
        if (device.relation === 'staff') return found;
        const v = await visibilityOn(d.db, device.relation, device);
        return { ...found, items: found.items.filter((a) => seesAlert(v, a)) };
      },
    }),

    route({
      method: 'get',
      path: '/alert-rules',
      tag: 'monitoring',
      summary: "Threshold rules of the caller's companies",
      permission: 'devices:telemetry',
      query: alertRulesQuery,
      responses: { 200: { description: 'a page of rules', schema: page(alertRuleSchema) } },
      handler: async ({ query, principal }) => listAlertRules(d.db, { ...query, companyIds: listScope(principal, 'devices:telemetry')?.companyIds }),
    }),

    route({
      method: 'post',
      path: '/alert-rules',
      tag: 'monitoring',
      summary: "Create a threshold rule on one property (of one device, one model, or every device of the rule's company)",
      permission: 'alerts:manage',
      body: alertRuleBody,
      status: 201,
      responses: {
        201: { description: 'the rule; it applies to the next value', schema: alertRuleSchema },
        400: errorResponse('invalid body, or companyId needed (the caller manages rules in several companies) or not the device\'s'),
        404: errorResponse('no such device or company (or the caller has no role in it)'),
      },
      handler: async ({ body, principal, access }) => {
        const { companyId: named, ...rule } = body;
        const companyId = await ruleCompany(access, body.deviceId, named);
        const created = await createAlertRule(d.db, { ...rule, companyId, createdBy: principal.userId });
        await audit(d.db, principal, { action: 'alert_rule.created', companyId, deviceId: body.deviceId ?? null, target: { type: 'alert-rule', id: created.id } });
        return created;
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
      handler: async ({ params, access }) => requireRule(access, params.id),
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
      handler: async ({ params, access, principal }) => {
        const r = await requireRule(access, params.id);
        await deleteAlertRule(d.db, r.id);
        await audit(d.db, principal, { action: 'alert_rule.deleted', companyId: r.companyId, deviceId: r.deviceId, target: { type: 'alert-rule', id: r.id } });
        return undefined;
      },
    }),
  ];
}
