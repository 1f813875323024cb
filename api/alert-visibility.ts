// Which alerts a caller sees. An alert tied to a property (a threshold rule's: node and property)
// is seen by those who see that property (api/property-visibility.ts): a device's end user only
// when the model's declaration shows it to them. An alert not tied to one (the device said
// `$state = alert`) is about the device itself: anyone who sees the device sees it.
import type { Db } from '../db/knex';
import type { Alert } from '../db/repositories/alerts';
import { devicePartiesOf } from '../db/repositories/devices';
import { liveShareRoles } from '../db/repositories/shares';
import type { ShareRole } from '../domain/roles';
import type { Relation } from '../domain/sharing';
import type { Principal } from './http/policy';
import { visibilityOn, type Visibility } from './property-visibility';
import { relationOf } from './require-device';

type AlertSubject = Pick<Alert, 'deviceId' | 'node' | 'property'>;

export const seesAlert = (v: Visibility, a: AlertSubject): boolean => a.node === null || a.property === null || v.sees(a.node, a.property);

/**
 * The alerts of a list (devices of the caller's companies, their own, those shared with them)
 * that the caller sees; each device's visibility is worked out once. A page may then hold fewer
 * than its limit; its cursor goes on all the same.
 */
export async function visibleAlerts<T extends AlertSubject>(db: Db, p: Principal, alerts: T[]): Promise<T[]> {
  if (p.platformAdmin || alerts.length === 0) return alerts;
  const ids = [...new Set(alerts.map((a) => a.deviceId))];
  const parties = await devicePartiesOf(db, ids);
  const unrelated = ids.filter((id) => parties.has(id) && relationOf(p, parties.get(id)!, null) === null);
  const shareRoles = p.companyId === null ? await liveShareRoles(db, p.userId, unrelated) : new Map<string, ShareRole>();
  const sees = new Map<string, (a: AlertSubject) => boolean>();
  // Devices of one company and model with one relation share a declaration: read it once.
  const memo = new Map<string, Promise<Visibility>>();
  for (const id of ids) {
    const device = parties.get(id);
    const relation: Relation | null = device ? relationOf(p, device, shareRoles.get(id) ?? null) : null;
    if (!device || relation === null) continue; // no longer related (a share ended meanwhile): nothing of it
    if (relation === 'staff') {
      sees.set(id, () => true); // staff see every property: no declaration to read
      continue;
    }
    const key = `${relation}\u0000${device.companyId}\u0000${device.model}`;
    if (!memo.has(key)) memo.set(key, visibilityOn(db, relation, device));
    const v = await memo.get(key)!;
    sees.set(id, (a) => seesAlert(v, a));
  }
  return alerts.filter((a) => sees.get(a.deviceId)?.(a) ?? false);
}
