// One device's firmware updates (design/contract.md "device update"): started in the device's
// lifecycle workflow (workflows/device-update.ts), which answers at once; read from Postgres, which
// the workflow writes as the update goes.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route, Reply } from '../http/route';
import { deviceParams, entityId, errorResponse, page, pageQuery } from '../schemas';
import { requireDevice } from '../require-device';
import { audit } from '../audit';
import { NotFoundError, UnprocessableError } from '../../domain/errors';
import { newEntityId, DEVICE_ID_PATTERN } from '../../domain/ids';
import { UPDATE_STATUSES } from '../../domain/device-update';
import { OTA_STATES } from '../../domain/ota';
import { getRelease } from '../../db/repositories/firmware';
import { getDeviceUpdate, listDeviceUpdates } from '../../db/repositories/device-updates';
import { cancelDeviceUpdate, startDeviceUpdate } from '../../temporal/device-workflows';

const seconds = (max: number) => z.number().int().min(1).max(max);
const startBody = z
  .object({
    firmwareId: entityId,
    /** Step deadlines in seconds (domain/device-update.ts StepTimeouts); the defaults suit real devices. */
    timeouts: z.object({ start: seconds(30 * 86_400), download: seconds(86_400), verify: seconds(86_400), install: seconds(86_400), reboot: seconds(86_400) }).partial().strict().optional(),
  })
  .strict();
const updateParams = z.object({ id: z.string().regex(DEVICE_ID_PATTERN), updateId: entityId }).strict();
const listQuery = z.object({ ...pageQuery }).strict();

export const deviceUpdateSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  releaseId: z.string(),
  version: z.string(),
  fromVersion: z.string().nullable(),
  status: z.enum(UPDATE_STATUSES),
  step: z.enum(OTA_STATES).nullable().describe("the device's last reported step"),
  progress: z.number().int().nullable(),
  error: z.string().nullable(),
  rolloutId: z.string().nullable(),
  requestedBy: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});

export function deviceUpdateRoutes(d: ApiDeps) {
  return [
    route({
      method: 'post',
      path: '/devices/:id/update',
      tag: 'updates',
      summary: 'Update the device to a firmware release: answered at once (queued); the device gets the request when it is online (it is waited for, bounded)',
      permission: 'devices:update',
      params: deviceParams,
      body: startBody,
      status: 202,
      responses: {
        202: { description: 'the update, queued', schema: deviceUpdateSchema, headers: { Location: 'the update' } },
        404: errorResponse('no such device, or no such release of its company'),
        409: errorResponse('another update of the device is in progress (update_in_progress), the device is blocked or not flashed yet (device_not_ready)'),
        422: errorResponse("the release is for another model (wrong_model)"),
      },
      handler: async ({ res, params, body, principal, access }) => {
        const device = await requireDevice(d.db, access, params.id);
        const release = await getRelease(d.db, body.firmwareId);
        if (!release || release.companyId !== device.companyId) throw new NotFoundError('firmware release', body.firmwareId);
        if (device.model !== null && release.model !== device.model) {
          throw new UnprocessableError('wrong_model', `release ${release.version} is for model '${release.model}', the device is a '${device.model}'`, [{ path: 'firmwareId', message: 'a release of another model' }]);
        }
        const updateId = newEntityId();
        const view = await startDeviceUpdate(d.temporal, params.id, {
          updateId,
          releaseId: release.id,
          version: release.version,
          size: release.size,
          sha256: release.sha256,
          signature: release.signature,
          actorId: principal.userId,
          timeouts: body.timeouts,
        });
        await audit(d.db, principal, { action: 'device.update_started', companyId: device.companyId, deviceId: params.id, target: { type: 'update', id: view.id }, details: { releaseId: release.id, version: release.version } });
        res.location(`/api/v1/devices/${params.id}/updates/${view.id}`);
        // The workflow recorded it before answering: what GET shows.
        return (await getDeviceUpdate(d.db, params.id, view.id)) ?? view;
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/updates',
      tag: 'updates',
      summary: "The device's firmware updates, newest first",
      permission: 'devices:read',
      params: deviceParams,
      query: listQuery,
      responses: { 200: { description: 'a page of updates', schema: page(deviceUpdateSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        await requireDevice(d.db, access, params.id);
        return listDeviceUpdates(d.db, params.id, query);
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/updates/:updateId',
      tag: 'updates',
      summary: 'One firmware update of the device, with the step it last reported',
      permission: 'devices:read',
      params: updateParams,
      responses: { 200: { description: 'the update', schema: deviceUpdateSchema }, 404: errorResponse('no such device, or no such update of it') },
      handler: async ({ params, access }) => {
        await requireDevice(d.db, access, params.id);
        const u = await getDeviceUpdate(d.db, params.id, params.updateId);
        if (!u) throw new NotFoundError('update', params.updateId);
        return u;
      },
    }),

    route({
      method: 'delete',
      path: '/devices/:id/updates/:updateId',
      tag: 'updates',
      summary: 'Cancel the update unless the device has begun installing it; a finished update is answered as it is',
      permission: 'devices:update',
      params: updateParams,
      responses: {
        200: { description: 'the update as it ended', schema: deviceUpdateSchema },
        404: errorResponse('no such device, or no such update of it'),
        409: errorResponse('the device is already installing it (too_late_to_cancel)'),
      },
      handler: async ({ params, principal, access }) => {
        await requireDevice(d.db, access, params.id);
        const u = await getDeviceUpdate(d.db, params.id, params.updateId);
        if (!u) throw new NotFoundError('update', params.updateId);
        if (u.finishedAt !== null) return u;
        await cancelDeviceUpdate(d.temporal, params.id, params.updateId, principal.userId);
        const after = (await getDeviceUpdate(d.db, params.id, params.updateId))!;
        return after.finishedAt ? after : new Reply(202, after);
      },
    }),
  ];
}
