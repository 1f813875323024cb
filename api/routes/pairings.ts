// Pairing (stage 2 of design/product.md): a signed-in person claims a device with the code on its
// label or its QR; the device confirms by its button; unpairing by its owner or an admin. The
// rules live in temporal/pairing-workflows.ts and the pairing workflow; these routes only say who
// asks.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { Reply, route } from '../http/route';
import { deviceId, deviceParams, errorResponse, idParams } from '../schemas';
import { audit } from '../audit';
import { requireDevice } from '../require-device';
import { NotFoundError } from '../../domain/errors';
import { DEFAULT_PAIRING_TIMEOUT_S, PAIRING_STATUSES } from '../../domain/pairing';
import { getDevice } from '../../db/repositories/devices';
import { cancelPairing, readPairing, requestPairing, unpair } from '../../temporal/pairing-workflows';
import type { Principal } from '../http/policy';

const code = z.string().min(1).max(64).regex(/^[A-Za-z0-9 -]+$/, 'letters, digits, spaces and hyphens only').describe('the pairing code on the device\'s label (case, spaces and hyphens do not matter)');
const pairingBody = z.union([
  z.object({ deviceId, code }).strict(),
  z.object({ qr: z.string().min(1).max(200).regex(/^[\x20-\x7E]+$/, 'printable ASCII only').describe('the whole text of the device\'s QR code: RDM1:<deviceId>:<code>') }).strict(),
]);
const pairingSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  userId: z.string(),
  status: z.enum(PAIRING_STATUSES),
  expiresAt: z.string().describe('until when the device may confirm'),
  createdAt: z.string().optional(),
  finishedAt: z.string().nullable().optional(),
});

export function pairingRoutes(d: ApiDeps) {
  const ctx = { temporal: d.temporal, db: d.db, taskQueue: d.taskQueue, timeoutS: d.pairingTimeoutS ?? DEFAULT_PAIRING_TIMEOUT_S };

  /** The attempt, to the person who asked or a platform admin; anyone else learns nothing of it. */
  async function visiblePairing(p: Principal, id: string) {
    const pairing = await readPairing(d.db, id);
    if (pairing.userId !== p.userId && !p.platformAdmin) throw new NotFoundError('pairing', id);
    return pairing;
  }

  return [
    route({
      method: 'post',
      path: '/pairings',
      tag: 'pairing',
      summary: 'Pair a device to oneself with the code on its label (or its QR text); the device then confirms by its button',
      permission: 'self',
      body: pairingBody,
      status: 202,
      responses: {
        202: { description: 'accepted: the device is `pairing` and has been asked to confirm; poll the Location', schema: pairingSchema, headers: { Location: 'the pairing attempt' } },
        400: errorResponse('invalid body; details name the field'),
        403: errorResponse('wrong pairing code (wrong_pairing_code)'),
        404: errorResponse('no such device'),
        409: errorResponse('the device cannot be paired now: not free (device_not_free), blocked, already paired, or another person\'s pairing is pending'),
        422: errorResponse('not the text of a device QR code (invalid_qr)'),
        429: errorResponse('too many wrong codes for this device or from this person (too_many_attempts); retry after Retry-After seconds'),
        503: errorResponse('the workflow service is unreachable'),
      },
      handler: async ({ res, body, principal }) => {
        const view = await requestPairing(ctx, { userId: principal.userId, ...body });
        res.location(`/api/v1/pairings/${view.id}`);
        return new Reply(202, view);
      },
    }),
    route({
      method: 'get',
      path: '/pairings/:id',
      tag: 'pairing',
      summary: 'One pairing attempt: pending, paired, rejected (by the device), expired or cancelled',
      permission: 'self',
      params: idParams,
      responses: { 200: { description: 'the attempt', schema: pairingSchema }, 404: errorResponse('no such attempt, or not the caller\'s') },
      handler: async ({ params, principal }) => visiblePairing(principal, params.id),
    }),
    route({
      method: 'delete',
      path: '/pairings/:id',
      tag: 'pairing',
      summary: 'Cancel one\'s pending pairing attempt: the device goes back to free',
      permission: 'self',
      params: idParams,
      responses: {
        200: { description: 'the attempt, cancelled', schema: pairingSchema },
        404: errorResponse('no such attempt, or not the caller\'s'),
        409: errorResponse('the attempt is over (pairing_finished)'),
        503: errorResponse('the workflow service is unreachable'),
      },
      handler: async ({ params, principal }) => {
        const p = await visiblePairing(principal, params.id);
        return cancelPairing(ctx, { pairingId: p.id, userId: p.userId });
      },
    }),
    route({
      method: 'delete',
      path: '/devices/:id/owner',
      tag: 'pairing',
      summary: 'Unpair a device (its owner, or an admin): the device forgets its owner and is free again',
      permission: 'devices:unpair',
      params: deviceParams,
      responses: {
        200: { description: 'the device, free and without an owner', schema: z.object({ deviceId: z.string(), status: z.enum(['free', 'unchanged']) }) },
        404: errorResponse('no such device'),
        409: errorResponse('the device has no owner (not_paired)'),
        503: errorResponse('the workflow service is unreachable'),
      },
      handler: async ({ params, principal, access }) => {
        const { companyId } = await requireDevice(d.db, access, params.id);
        const device = await getDevice(d.db, params.id);
        const asAdmin = device?.ownerId !== principal.userId;
        const r = await unpair(ctx, { deviceId: params.id, userId: principal.userId, asAdmin });
        await audit(d.db, principal, { action: 'device.unpaired', companyId, deviceId: params.id, details: { by: asAdmin ? 'admin' : 'owner' } });
        return r;
      },
    }),
  ];
}
