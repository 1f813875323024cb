// The declaration of what a device's end users see and set (design/product.md, stage 4: "an end
// user sees controls, a serviceman full telemetry"): per company and device model, per property
// (or setting, under node `$settings`), with `*` for any. Company staff are not narrowed by it:
// their role says what they may do. domain/sharing.ts resolves which rule applies.
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { errorResponse, modelParams, propertyAccessBody, propertyAccessParams, propertyAccessSchema } from '../schemas';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../domain/errors';
import { DEFAULT_PROPERTY_ACCESS, MAX_RULES_PER_MODEL } from '../../domain/sharing';
import { deleteRule, listRules, putRule } from '../../db/repositories/property-access';
import { audit } from '../audit';
import { requireCompany } from '../require-company';

const rulesSchema = z.object({
  model: z.string(),
  default: z.object({ visibleTo: z.array(z.string()), settableBy: z.array(z.string()) }).describe('what applies to a property no rule names'),
  items: z.array(propertyAccessSchema),
});

export function propertyAccessRoutes(d: ApiDeps) {
  return [
    route({
      method: 'get',
      path: '/companies/:id/models/:model/property-access',
      tag: 'sharing',
      summary: "A model's declaration (model `*`: the company's rules for every model), by node then property",
      permission: 'companies:read',
      params: modelParams,
      responses: { 200: { description: 'the rules', schema: rulesSchema }, 404: errorResponse('no such company') },
      handler: async ({ params, access }) => {
        await requireCompany(d.db, access, params.id);
        return { model: params.model, default: DEFAULT_PROPERTY_ACCESS, items: await listRules(d.db, params.id, params.model) };
      },
    }),

    route({
      method: 'put',
      path: '/companies/:id/models/:model/property-access/:node/:property',
      tag: 'sharing',
      summary: "Declare who of a device's end users sees and sets a property (node `$settings`: a setting; `*`: any)",
      permission: 'properties:declare',
      params: propertyAccessParams,
      body: propertyAccessBody,
      responses: {
        200: { description: 'the rule, in force for every device of the model at once', schema: propertyAccessSchema },
        400: errorResponse('invalid rule (settableBy wider than visibleTo, a viewer that sets)'),
        404: errorResponse('no such company'),
        409: errorResponse(`the model has ${MAX_RULES_PER_MODEL} rules already (too_many_rules)`),
      },
      handler: async ({ params, body, principal, access }) => {
        await requireCompany(d.db, access, params.id);
        const key = { model: params.model, node: params.node, property: params.property };
        const existing = await listRules(d.db, params.id, params.model);
        if (existing.length >= MAX_RULES_PER_MODEL && !existing.some((r) => r.node === key.node && r.property === key.property)) {
          throw new ConflictError('too_many_rules', `a model has at most ${MAX_RULES_PER_MODEL} rules: use * for what many properties share`);
        }
        const rule = await putRule(d.db, params.id, { ...key, visibleTo: body.visibleTo, settableBy: body.settableBy }, principal.userId);
        await audit(d.db, principal, { action: 'property_access.set', companyId: params.id, target: { type: 'property_access', id: `${key.model}/${key.node}/${key.property}` }, details: { visibleTo: rule.visibleTo, settableBy: rule.settableBy } });
        return rule;
      },
    }),

    route({
      method: 'delete',
      path: '/companies/:id/models/:model/property-access/:node/:property',
      tag: 'sharing',
      summary: 'Remove a rule: the next most specific one (or the default) applies',
      permission: 'properties:declare',
      params: propertyAccessParams,
      responses: { 204: { description: 'removed' }, 404: errorResponse('no such company, or no such rule') },
      handler: async ({ params, principal, access }) => {
        await requireCompany(d.db, access, params.id);
        const key = { model: params.model, node: params.node, property: params.property };
        if (!(await deleteRule(d.db, params.id, key))) throw new NotFoundError('rule', `${key.model}/${key.node}/${key.property}`);
        await audit(d.db, principal, { action: 'property_access.removed', companyId: params.id, target: { type: 'property_access', id: `${key.model}/${key.node}/${key.property}` } });
      },
    }),
  ];
}
