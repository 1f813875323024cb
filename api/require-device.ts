// The one place a route under /devices/{id} looks its device up: it must exist and the caller
// must hold the route's permission on it (its company, its owner, a share), else 404 (no
// relation: the caller does not learn it exists) or 403. New device routes call this first.
import type { Db } from '../db/knex';
import { getDevicePresence, type DevicePresence } from '../db/repositories/device-state';
import type { Access } from './http/route';
import { enforce } from './enforce';

/** What the policy needs to know about a device. */
export interface DeviceParties {
  companyId: string | null;
  ownerId: string | null;
}

export async function requireDevice(db: Db, access: Access, id: string): Promise<DevicePresence> {
  const presence = await getDevicePresence(db, id);
  checkDevice(access, id, presence);
  return presence!;
}

/** For a route that read the device's row itself (in the same query as what else it needs). */
export function checkDevice(access: Access, id: string, device: DeviceParties | null): asserts device is DeviceParties {
  // Shares (their own step) add `shareRole`: the caller's role in a live share of this device.
  enforce(access, device && { kind: 'device', companyId: device.companyId, ownerId: device.ownerId, shareRole: null }, 'device', id);
}
