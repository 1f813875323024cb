// The per-model declaration of which relation to a device (owner, serviceman, viewer) sees and
// sets which property or setting (domain/sharing.ts resolves it). Read only for a device's end
// users: company staff see everything their role allows, so their calls never pay for it.
import type { Db } from '../knex';
import { ANY, type Audience, type PropertyAccessRule } from '../../domain/sharing';

interface RuleRow {
  model: string;
  node: string;
  property: string;
  visible_to: Audience[];
  settable_by: Audience[];
}

const toRule = (r: RuleRow): PropertyAccessRule => ({ model: r.model, node: r.node, property: r.property, visibleTo: r.visible_to, settableBy: r.settable_by });

/** The rules that may apply to a device of `model` in a company: the model's own and those for any model. */
export async function rulesFor(db: Db, companyId: string | null, model: string | null): Promise<PropertyAccessRule[]> {
  if (companyId === null) return [];
  const models = model === null ? [ANY] : [model, ANY];
  const rows: RuleRow[] = await db('property_access').where({ company_id: companyId }).whereIn('model', models).select('model', 'node', 'property', 'visible_to', 'settable_by');
  return rows.map(toRule);
}

/** A company's declaration for one model (or ANY), by node then property. */
export async function listRules(db: Db, companyId: string, model: string): Promise<PropertyAccessRule[]> {
  const rows: RuleRow[] = await db('property_access').where({ company_id: companyId, model }).orderBy(['node', 'property']).select('model', 'node', 'property', 'visible_to', 'settable_by');
  return rows.map(toRule);
}

export async function putRule(db: Db, companyId: string, rule: PropertyAccessRule, by: string): Promise<PropertyAccessRule> {
  const [row]: RuleRow[] = await db('property_access')
    .insert({ company_id: companyId, model: rule.model, node: rule.node, property: rule.property, visible_to: rule.visibleTo, settable_by: rule.settableBy, updated_by: by, updated_at: db.fn.now() })
    .onConflict(['company_id', 'model', 'node', 'property'])
    .merge(['visible_to', 'settable_by', 'updated_by', 'updated_at'])
    .returning(['model', 'node', 'property', 'visible_to', 'settable_by']);
  return toRule(row!);
}

/** Whether there was such a rule. */
export async function deleteRule(db: Db, companyId: string, key: { model: string; node: string; property: string }): Promise<boolean> {
  return (await db('property_access').where({ company_id: companyId, ...key }).delete()) > 0;
}
