// Which lifecycle actor a caller speaks as on a company's device, and the API-side guard for
// manufacturers (the device workflow's validator checks the same rule again).
import { MANUFACTURER_STATUSES, type Actor, type DeviceStatus } from '../../domain/device-status';
import { ForbiddenError } from '../../domain/errors';
import type { Principal } from '../http/policy';

export function actorOf(p: Principal, companyId: string | null): Actor {
  return p.platformAdmin || (companyId !== null && p.roles[companyId] === 'admin') ? 'admin' : 'manufacturer';
}

export function assertMayTarget(p: Principal, companyId: string | null, status: DeviceStatus): void {
  if (actorOf(p, companyId) === 'manufacturer' && !MANUFACTURER_STATUSES.includes(status)) {
    throw new ForbiddenError(`a manufacturer may only set ${MANUFACTURER_STATUSES.join(' or ')}`);
  }
}
