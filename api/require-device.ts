// The one place a route under /devices/{id} looks its device up: it must exist and the caller
// must hold the route's permission on it (its company, its owner, a live share), else 404 (no
// relation: the caller does not learn it exists) or 403. New device routes call this first.
// It answers with the caller's relation to the device, which says which properties they see.
import type { Db } from '../db/knex';
import { getDevicePresence, type DevicePresence } from '../db/repositories/device-state';
import { liveShareRole } from '../db/repositories/shares';
import type { Relation } from '../domain/sharing';
import type { ShareRole } from '../domain/roles';
import type { Principal, Resource } from './http/policy';
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
  const r = device && (await relationTo(db, access.principal, id, device));
  enforce(access, device && { kind: 'device', companyId: device.companyId, ownerId: device.ownerId, shareRole: r!.shareRole }, 'device', id);
  return { ...device!, relation: r!.relation! };
}

/**
 * Who the caller is to a device, for property visibility: company staff (a role in its company,
 * or a platform admin) before its owner before a person it is shared with; null: none of them.
 * Owners and shares count only for a call acting with all the user's rights (not a company token).
 */
export function relationOf(p: Principal, device: DeviceParties, shareRole: ShareRole | null): Relation | null {
  if (p.platformAdmin || (device.companyId !== null && p.roles[device.companyId] !== undefined)) return 'staff';
  if (p.companyId !== null) return null;
  if (device.ownerId !== null && device.ownerId === p.userId) return 'owner';
  return shareRole;
}

/** The caller's relation to one device and, when that is a share, its role (looked up only when the device's row relates nothing: one short indexed read). */
export async function relationTo(db: Db, p: Principal, id: string, device: DeviceParties): Promise<{ relation: Relation | null; shareRole: ShareRole | null }> {
  const direct = relationOf(p, device, null);
  if (direct !== null || p.companyId !== null) return { relation: direct, shareRole: null };
  const shareRole = await liveShareRole(db, id, p.userId);
  return { relation: shareRole, shareRole };
}

/** The device as the policy sees it, for a caller whose relation is known (to ask about another permission). */
export function deviceResource(device: DeviceParties, relation: Relation): Resource {
  return { kind: 'device', companyId: device.companyId, ownerId: device.ownerId, shareRole: relation === 'serviceman' || relation === 'viewer' ? relation : null };
}
