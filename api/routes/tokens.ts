// API tokens: created by an admin, shown once, stored hashed, revocable.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { createdTokenSchema, createTokenBody, errorResponse, entityId, page, pageQuery, tokenSchema } from '../schemas';
import { newApiToken, sha256Hex } from '../../domain/credentials';
import { NotFoundError } from '../../domain/errors';
import { newEntityId } from '../../domain/ids';
import { getToken, insertToken, listTokens, revokeToken } from '../../db/repositories/tokens';

export function tokenRoutes(d: ApiDeps) {
  return [
    route({
      method: 'post',
      path: '/tokens',
      tag: 'tokens',
      summary: 'Create an API token (e.g. for a manufacturer); the token is in this response only',
      permission: 'tokens:manage',
      body: createTokenBody,
      status: 201,
      responses: { 201: { description: 'the token, shown once', schema: createdTokenSchema, headers: { Location: 'the token record' } }, 400: errorResponse('invalid body') },
      handler: async ({ res, body, principal }) => {
        const token = newApiToken();
        const record = await insertToken(d.db, { id: newEntityId(), kind: body.kind, name: body.name, tokenHash: sha256Hex(token), createdBy: principal.tokenId });
        res.location(`/api/v1/tokens/${record.id}`).setHeader('Cache-Control', 'no-store');
        return { ...record, token };
      },
    }),

    route({
      method: 'get',
      path: '/tokens',
      tag: 'tokens',
      summary: 'List API tokens (never the tokens themselves)',
      permission: 'tokens:manage',
      query: z.object({ ...pageQuery }).strict(),
      responses: { 200: { description: 'a page of tokens', schema: page(tokenSchema) } },
      handler: async ({ query }) => listTokens(d.db, query),
    }),

    route({
      method: 'get',
      path: '/tokens/:id',
      tag: 'tokens',
      summary: 'Read an API token record',
      permission: 'tokens:manage',
      params: z.object({ id: entityId }).strict(),
      responses: { 200: { description: 'the token record', schema: tokenSchema }, 404: errorResponse('no such token') },
      handler: async ({ params }) => {
        const t = await getToken(d.db, params.id);
        if (!t) throw new NotFoundError('token', params.id);
        return t;
      },
    }),

    route({
      method: 'delete',
      path: '/tokens/:id',
      tag: 'tokens',
      summary: 'Revoke an API token (it stops working within 5 seconds)',
      permission: 'tokens:manage',
      params: z.object({ id: entityId }).strict(),
      status: 204,
      responses: { 204: { description: 'revoked' }, 404: errorResponse('no such token') },
      handler: async ({ params }) => {
        if (!(await revokeToken(d.db, params.id))) throw new NotFoundError('token', params.id);
        return undefined;
      },
    }),
  ];
}
