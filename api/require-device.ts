// The one place a route under /devices/{id} looks its device up: it must exist and the caller
// must hold the route's permission on it (its company, its owner, a live share), else 404 (no
// relation: the caller does not learn it exists) or 403. New device routes call this first.
// It answers with the caller's relation to the device, which says which properties they see.
import type { Db } from '../db/knex';
import { getDevicePresence, type DevicePresence } from '../db/repositories/device-state';
import { liveShareRole } from '../db/repositories/shares';
import type { Relation } from '../domain/sharing';
import type { Resource } from './http/policy';
import type { Access } from './http/route';
import { enforce } from './enforce';

/** What the policy needs to know about a device. */
export interface DeviceParties {
  companyId: string | null;
  ownerId: string | null;
}

export async function requireDevice(db: Db, access: Access, id: string): Promise<DevicePresence & { relation: Relation }> {
  return checkDevice(db, access, id, await getDevicePresence(db, id));
}

/** For a route that read the device's row itself (in the same query as what else it needs). */
export async function checkDevice<T extends DeviceParties>(db: Db, access: Access, id: string, device: T | null): Promise<T & { relation: Relation }> {
  const p = access.principal;
  const staff = device !== null && (p.platformAdmin || (device.companyId !== null && p.roles[device.companyId] !== undefined));
  const owner = device !== null && p.companyId === null && device.ownerId === p.userId;
  // A share is looked up only for someone the device's row does not already relate (one short indexed read).
  const shareRole = device !== null && !staff && !owner && p.companyId === null ? await liveShareRole(db, id, p.userId) : null;
  enforce(access, device && { kind: 'device', companyId: device.companyId, ownerId: device.ownerId, shareRole }, 'device', id);
  return { ...device!, relation: staff ? 'staff' : owner ? 'owner' : shareRole! };
}

/** The device as the policy sees it, for a caller whose relation is known (to ask about another permission). */
export function deviceResource(device: DeviceParties, relation: Relation): Resource {
  return { kind: 'device', companyId: device.companyId, ownerId: device.ownerId, shareRole: relation === 'serviceman' || relation === 'viewer' ? relation : null };
}
