// A device's access to the broker: block (the broker refuses it and cuts it off), unblock, and
// secret rotation (the new secret is shown once; the old one stops working). Each goes through
// the device's lifecycle workflow, which writes Postgres and the broker before its own state.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { deviceParams, deviceSchema, errorResponse } from '../schemas';
import { deviceMqttUsername } from '../../domain/broker-identity';
import { NotFoundError } from '../../domain/errors';
import { getDevice } from '../../db/repositories/devices';
import { requireDevice } from '../require-device';
import { rotateDeviceSecret, setDeviceBlocked } from '../../temporal/device-workflows';
import { actorOf } from './status-rules';
import { audit } from '../audit';

const blockResult = z.object({ device: deviceSchema, changed: z.boolean().describe('false when the device already was so') });
const secretResult = z.object({
  deviceId: z.string(),
  mqttUsername: z.string(),
  secret: z.string().describe('the new MQTT password: shown once, never stored (only its SHA-256)'),
  generation: z.number().int().describe('the secret generation; the previous one no longer logs in'),
});

export function deviceAccessRoutes(d: ApiDeps) {
  const blockRoute = (blocked: boolean) =>
    route({
      method: 'post',
      path: `/devices/:id/${blocked ? 'block' : 'unblock'}`,
      tag: 'devices',
      summary: blocked
        ? 'Block a device: the broker refuses it, and a connected one is cut off within a second'
        : 'Unblock a device: the broker lets it log in again with its current secret',
      permission: 'devices:block',
      params: deviceParams,
      responses: {
        200: { description: blocked ? 'the device is blocked' : 'the device is not blocked', schema: blockResult },
        404: errorResponse('no such device'),
        409: errorResponse('the device is still being provisioned (not_ready)'),
        503: errorResponse('the workflow service or the broker is unreachable; nothing changed, or the change will complete: read the device'),
      },
      handler: async ({ params, principal, access }) => {
        const { companyId } = await requireDevice(d.db, access, params.id);
        const r = await setDeviceBlocked(d.temporal, params.id, { blocked, actor: actorOf(principal, companyId), actorId: principal.userId });
        if (r.changed) await audit(d.db, principal, { action: blocked ? 'device.blocked' : 'device.unblocked', companyId, deviceId: params.id });
        const device = await getDevice(d.db, params.id);
        if (!device) throw new NotFoundError('device', params.id);
        return { device, changed: r.changed };
      },
    });

  return [
    blockRoute(true),
    blockRoute(false),
    route({
      method: 'post',
      path: '/devices/:id/secret',
      tag: 'devices',
      summary: "Rotate a device's MQTT secret: the answer holds the new one, once; the old one stops working (a connected device is cut off)",
      permission: 'devices:credentials',
      params: deviceParams,
      responses: {
        200: { description: 'the new secret', schema: secretResult },
        404: errorResponse('no such device'),
        409: errorResponse('the device is still being provisioned (not_ready)'),
        503: errorResponse('the workflow service or the broker is unreachable'),
      },
      handler: async ({ res, params, principal, access }) => {
        const { companyId } = await requireDevice(d.db, access, params.id);
        const { generation } = await rotateDeviceSecret(d.temporal, params.id, { actor: actorOf(principal, companyId), actorId: principal.userId });
        await audit(d.db, principal, { action: 'device.secret_rotated', companyId, deviceId: params.id, details: { generation } });
        res.setHeader('Cache-Control', 'no-store');
        return { deviceId: params.id, mqttUsername: deviceMqttUsername(params.id), secret: d.credentials.deviceSecret(params.id, generation), generation };
      },
    }),
  ];
}
