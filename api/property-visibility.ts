// What of one device a caller sees and may set, by their relation to it (api/require-device.ts)
// and the company's declaration for the device's model (domain/sharing.ts). The sensors,
// telemetry, control and config routes all ask here.
import type { Db } from '../db/knex';
import { rulesFor } from '../db/repositories/property-access';
import { ForbiddenError, NotFoundError } from '../domain/errors';
import { resolveAccess, sees, sets, SETTINGS_NODE, type PropertyAccess, type Relation } from '../domain/sharing';

export interface Visibility {
  relation: Relation;
  access(node: string, property: string): PropertyAccess;
  sees(node: string, property: string): boolean;
  sets(node: string, property: string): boolean;
}

export async function visibilityOn(db: Db, relation: Relation, device: { companyId: string | null; model: string | null }): Promise<Visibility> {
  const rules = await rulesFor(db, device.companyId, device.model);
  const access = (node: string, property: string) => resolveAccess(rules, device.model, node, property);
  return {
    relation,
    access,
    sees: (node, property) => sees(relation, access(node, property)),
    sets: (node, property) => sets(relation, access(node, property)),
  };
}

/** 404 for a property the caller may not see (as if it did not exist), 403 for one they see but may not set. */
export function assertSettable(v: Visibility, node: string, property: string): void {
  const what = node === SETTINGS_NODE ? 'setting' : 'property';
  const name = node === SETTINGS_NODE ? property : `${node}/${property}`;
  if (!v.sees(node, property)) throw new NotFoundError(what, name);
  if (!v.sets(node, property)) throw new ForbiddenError(`your access to this device does not let you set ${what} '${name}'`);
}
