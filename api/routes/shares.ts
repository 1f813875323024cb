// Sharing (design/product.md, stage 4): a device's owner lends it to another person as
// `serviceman` or `viewer`, maybe until a time. A share with an end has a timer workflow
// (workflows/share-expiry.ts) that ends it; the policy counts a share only while it is open and
// unexpired (api/require-device.ts), so what a sharee may do never depends on the timer's punctuality.
// The person a share is for may read it and end it themselves (give the device back: reason `left`).
import type { ApiDeps } from '../deps';
import type { Db } from '../../db/knex';
import { route } from '../http/route';
import { createShareBody, deviceParams, errorResponse, listSharesQuery, page, shareParams, shareSchema } from '../schemas';
import { AppError, ConflictError, UnprocessableError, ValidationError } from '../../domain/errors';
import { newEntityId } from '../../domain/ids';
import { MAX_SHARE_DAYS } from '../../domain/sharing';
import { createShare, endShare, getShare, listShares } from '../../db/repositories/shares';
import { findUserByEmail, getUser } from '../../db/repositories/users';
import { signalShareEnded, startShareExpiry } from '../../temporal/share-workflows';
import { requireDevice } from '../require-device';
import { requireShare } from '../require-share';

/**
 * The person to share with, by ID or by email. An unknown one is 404 `user_not_found` either way:
 * an email says no more here than open sign-up already tells anyone (`email_taken`).
 */
async function sharee(db: Db, body: { userId?: string; email?: string }): Promise<string> {
  const user = body.userId !== undefined ? await getUser(db, body.userId) : await findUserByEmail(db, body.email!);
  if (!user) throw new AppError(404, 'user_not_found', body.userId !== undefined ? `user '${body.userId}' not found` : 'no account has this email');
  return user.id;
}

export function shareRoutes(d: ApiDeps) {
  /** Best effort: a timer that misses this finds its share ended when it fires. */
  const stopTimer = (shareId: string) =>
    signalShareEnded(d.temporal, shareId).catch((err: Error) => d.log.warn({ err, shareId }, 'share ended; its timer was not told and will find it ended when it fires'));

  return [
    route({
      method: 'post',
      path: '/devices/:id/shares',
      tag: 'sharing',
      summary: 'Share a device with a person as serviceman or viewer, optionally until a time (the owner, or an admin)',
      permission: 'devices:share',
      params: deviceParams,
      body: createShareBody,
      status: 201,
      responses: {
        201: { description: 'the share, open now', schema: shareSchema, headers: { Location: 'the share' } },
        400: errorResponse('invalid body, or expiresAt not in the future (or more than 10 years ahead)'),
        404: errorResponse('no such device, or no account with that userId or email (user_not_found)'),
        409: errorResponse('the device has no owner (not_paired), is already shared with that person (already_shared), or has too many shares (too_many_shares)'),
        422: errorResponse("the person is the device's owner (cannot_share_with_owner)"),
        503: errorResponse('the workflow service is unreachable (a share with an end needs its timer): nothing was shared'),
      },
      handler: async ({ res, params, body, principal, access }) => {
        if (body.expiresAt !== undefined) {
          const at = Date.parse(body.expiresAt);
          if (at <= Date.now()) throw new ValidationError('expiresAt: must be in the future', [{ path: 'expiresAt', message: 'must be in the future' }]);
          if (at > Date.now() + MAX_SHARE_DAYS * 86_400_000) throw new ValidationError(`expiresAt: at most ${MAX_SHARE_DAYS} days ahead`, [{ path: 'expiresAt', message: `at most ${MAX_SHARE_DAYS} days ahead; omit it for a share without an end` }]);
        }
        const device = await requireDevice(d.db, access, params.id);
        if (device.ownerId === null) throw new ConflictError('not_paired', `device '${params.id}' has no owner: only a paired device is shared`);
        const userId = await sharee(d.db, body);
        if (userId === device.ownerId) throw new UnprocessableError('cannot_share_with_owner', "the person is the device's owner", [{ path: body.userId !== undefined ? 'userId' : 'email', message: "the device's owner" }]);
        const share = { id: newEntityId(), deviceId: params.id, userId, role: body.role, expiresAt: body.expiresAt ? new Date(body.expiresAt).toISOString() : null, createdBy: principal.userId };
        // The timer first: when Temporal is out of reach nothing is shared (503); a timer whose share
        // is then refused below is told so, or finds no open share when it fires.
        if (share.expiresAt) await startShareExpiry(d.temporal, d.taskQueue, { shareId: share.id, deviceId: share.deviceId, expiresAt: share.expiresAt });
        try {
          const created = await createShare(d.db, share, device.companyId, { userId: principal.userId, credentialId: principal.credentialId });
          res.location(`/api/v1/devices/${params.id}/shares/${created.id}`);
          return created;
        } catch (err) {
          if (share.expiresAt) await stopTimer(share.id);
          throw err;
        }
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/shares',
      tag: 'sharing',
      summary: "A device's shares, newest first: the open ones, or all with includeEnded=true",
      permission: 'devices:share',
      params: deviceParams,
      query: listSharesQuery,
      responses: { 200: { description: 'a page of shares', schema: page(shareSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        await requireDevice(d.db, access, params.id);
        return listShares(d.db, params.id, { includeEnded: query.includeEnded === 'true', limit: query.limit, cursor: query.cursor });
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/shares/:shareId',
      tag: 'sharing',
      summary: 'One share of a device, open or ended (and why): to the owner, an admin, and the person it is for',
      permission: 'devices:share',
      params: shareParams,
      responses: { 200: { description: 'the share', schema: shareSchema }, 404: errorResponse('no such device, or no such share of it') },
      handler: async ({ params, access }) => (await requireShare(d.db, access, params.id, params.shareId)).share,
    }),

    route({
      method: 'delete',
      path: '/devices/:id/shares/:shareId',
      tag: 'sharing',
      summary: 'End a share now (the owner or an admin revokes it; the person it is for gives the device back); they lose the device at once. Ending an ended share answers it as it is',
      permission: 'devices:share',
      params: shareParams,
      responses: { 200: { description: 'the share, ended (endReason revoked, or left when its person ended it)', schema: shareSchema }, 404: errorResponse('no such device, or no such share of it') },
      handler: async ({ params, principal, access }) => {
        const { share, bySharee } = await requireShare(d.db, access, params.id, params.shareId);
        const ended = await endShare(d.db, share.id, bySharee ? 'left' : 'revoked', { userId: principal.userId, credentialId: principal.credentialId });
        if (ended && share.expiresAt) await stopTimer(share.id);
        return ended ?? (await getShare(d.db, params.id, params.shareId))!;
      },
    }),
  ];
}
