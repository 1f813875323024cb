// The one 404 for routes under /devices/{id}: the device must exist before anything is read or sent.
import { NotFoundError } from '../domain/errors';
import type { Db } from '../db/knex';
import { getDevicePresence, type DevicePresence } from '../db/repositories/device-state';

export async function requireDevice(db: Db, id: string): Promise<DevicePresence> {
  const presence = await getDevicePresence(db, id);
  if (!presence) throw new NotFoundError('device', id);
  return presence;
}
