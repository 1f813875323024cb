// The one lookup of a device's share for a route: the share must exist on that device and the
// caller must hold the route's permission on it: through the device (its company's staff, its
// owner), or as the person it is shared with (api/http/policy.ts), else 404 / 403.
import type { Db } from '../db/knex';
import { getDevicePresence } from '../db/repositories/device-state';
import { getShare } from '../db/repositories/shares';
import type { Share } from '../domain/sharing';
import type { Access } from './http/route';
import { enforce } from './enforce';
import { relationTo } from './require-device';

export interface ShareAccess {
  share: Share;
  /** The caller is the person the share is for (they give the device back rather than revoke). */
  bySharee: boolean;
}

export async function requireShare(db: Db, access: Access, deviceId: string, shareId: string): Promise<ShareAccess> {
  const p = access.principal;
  const device = await getDevicePresence(db, deviceId);
  const [share, rel] = device ? await Promise.all([getShare(db, deviceId, shareId), relationTo(db, p, deviceId, device)]) : [null, null];
  enforce(access, share && { kind: 'share', companyId: device!.companyId, ownerId: device!.ownerId, shareRole: rel!.shareRole, userId: share.userId }, 'share', shareId);
  return { share: share!, bySharee: p.companyId === null && share!.userId === p.userId };
}
