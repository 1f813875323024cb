// What a control call needs to know before it talks to a device, in one round trip: whether the
// device exists and is reachable, and how the property it wants to set is described.
import type { Db } from '../knex';
import type { Datatype } from '../../domain/homie';

export interface ControlTarget {
  companyId: string | null;
  ownerId: string | null;
  model: string | null;
  online: boolean;
  blocked: boolean;
  /** null when the device has not described this property. */
  property: { datatype: Datatype; format: string | null; unit: string | null; settable: boolean } | null;
}

export async function controlTarget(db: Db, deviceId: string, node?: string, property?: string): Promise<ControlTarget | null> {
  const { rows } = await db.raw<{ rows: { company_id: string | null; owner_id: string | null; model: string | null; online: boolean; blocked: boolean; datatype: Datatype | null; format: string | null; unit: string | null; settable: boolean | null }[] }>(
    `SELECT d.company_id, d.owner_id, d.model, d.online, d.blocked, p.datatype, p.format, p.unit, p.settable
       FROM devices d
       LEFT JOIN device_properties p ON p.device_id = d.id AND p.node = ? AND p.property = ?
      WHERE d.id = ?`,
    [node ?? '', property ?? '', deviceId],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    companyId: r.company_id,
    ownerId: r.owner_id,
    model: r.model,
    online: r.online,
    blocked: r.blocked,
    property: r.datatype ? { datatype: r.datatype, format: r.format, unit: r.unit, settable: r.settable ?? false } : null,
  };
}
