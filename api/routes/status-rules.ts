// Which lifecycle actor a token speaks as, and the API-side guard for manufacturer tokens
// (the device workflow's validator checks the same rule again).
import { MANUFACTURER_STATUSES, type Actor, type DeviceStatus } from '../../domain/device-status';
import { ForbiddenError } from '../../domain/errors';
import type { Principal } from '../http/auth';

export function actorOf(p: Principal): Actor {
  return p.kind === 'admin' ? 'admin' : 'manufacturer';
}

export function assertMayTarget(p: Principal, status: DeviceStatus): void {
  if (p.kind === 'manufacturer' && !MANUFACTURER_STATUSES.includes(status)) {
    throw new ForbiddenError(`a manufacturer token may only set ${MANUFACTURER_STATUSES.join(' or ')}`);
  }
}
