// Devices: list and read (from Postgres), change status (through the device's workflow), QR codes.
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { deviceParams, deviceSchema, errorResponse, listDevicesQuery, page, statusBody, transitionSchema } from '../schemas';
import { NotFoundError } from '../../domain/errors';
import type { Device } from '../../domain/model';
import { qrPayload } from '../../domain/qr-payload';
import { getDevice, listDevices, secretGeneration } from '../../db/repositories/devices';
import { audit } from '../audit';
import { listScope } from '../http/policy';
import type { Access } from '../http/route';
import { requireDevice } from '../require-device';
import { qrPng, qrSvg } from '../../files/qr';
import { transitionDevice } from '../../temporal/device-workflows';
import { actorOf, assertMayTarget } from './status-rules';

const QR_TYPES = { png: 'image/png', svg: 'image/svg+xml' } as const;

export function deviceRoutes(d: ApiDeps) {
  async function deviceOr404(access: Access, id: string): Promise<Device> {
    await requireDevice(d.db, access, id);
    const device = await getDevice(d.db, id);
    if (!device) throw new NotFoundError('device', id);
    return device;
  }

  async function payloadOf(id: string): Promise<string> {
    const generation = await secretGeneration(d.db, id);
    if (generation === null) throw new NotFoundError('device', id);
    return qrPayload(id, d.credentials.device(id, generation).pairingCode);
  }

  return [
    route({
      method: 'get',
      path: '/devices',
      tag: 'devices',
      summary: "List the devices the caller may see (their companies', the ones they own), filtered by status, batch and online state",
      permission: 'devices:read',
      query: listDevicesQuery,
      responses: { 200: { description: 'a page of devices, ordered by ID', schema: page(deviceSchema) }, 400: errorResponse('bad filter') },
      handler: async ({ query, principal }) => listDevices(d.db, { ...query, scope: listScope(principal, 'devices:read') }),
    }),

    route({
      method: 'get',
      path: '/devices/:id',
      tag: 'devices',
      summary: 'Read a device',
      permission: 'devices:read',
      params: deviceParams,
      responses: { 200: { description: 'the device', schema: deviceSchema }, 404: errorResponse('no such device') },
      handler: async ({ params, access }) => deviceOr404(access, params.id),
    }),

    route({
      method: 'post',
      path: '/devices/:id/status',
      tag: 'devices',
      summary: "Move a device through its lifecycle (manufacturers: 'manufacturing' and 'manufactured' only)",
      permission: 'devices:status',
      params: deviceParams,
      body: statusBody,
      responses: {
        200: { description: 'the change is recorded (or the device already had that status)', schema: transitionSchema },
        403: errorResponse('this token may not set that status'),
        404: errorResponse('no such device'),
        409: errorResponse('illegal transition (code illegal_transition), or the device is still being provisioned (not_ready)'),
      },
      handler: async ({ params, body, principal, access }) => {
        const { companyId } = await requireDevice(d.db, access, params.id);
        assertMayTarget(principal, companyId, body.status);
        const r = await transitionDevice(d.temporal, params.id, { to: body.status, actor: actorOf(principal, companyId), actorId: principal.userId, reason: body.reason ?? null });
        if (r.changed) await audit(d.db, principal, { action: 'device.status_changed', companyId, deviceId: params.id, details: { from: r.from, to: r.to } });
        return { device: await deviceOr404(access, params.id), from: r.from, to: r.to, changed: r.changed };
      },
    }),

    ...(['png', 'svg'] as const).map((format) =>
      route({
        method: 'get',
        path: `/devices/:id/qr.${format}`,
        tag: 'devices',
        summary: `The device's QR code (payload RDM1:<deviceId>:<pairingCode>) as ${format.toUpperCase()}`,
        permission: 'batches:export',
        params: deviceParams,
        responses: { 200: { description: `${format.toUpperCase()} image`, contentType: QR_TYPES[format] }, 404: errorResponse('no such device') },
        handler: async ({ res, params, access, principal }) => {
          const { companyId } = await requireDevice(d.db, access, params.id);
          const payload = await payloadOf(params.id);
          await audit(d.db, principal, { action: 'device.qr_exported', companyId, deviceId: params.id, details: { format } });
          res.type(QR_TYPES[format]).setHeader('Cache-Control', 'private, no-store');
          res.send(format === 'png' ? qrPng(payload) : qrSvg(payload));
        },
      }),
    ),
  ];
}
