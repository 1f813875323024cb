// API tokens: a user makes their own (for scripts, a factory's machine), shown once, stored
// hashed, revocable, optionally expiring. A token acts with its user's rights, limited to one
// company when it names one; it never has rights of its own. A company's admins see and revoke
// the tokens limited to their company; a token without a company is its user's alone (it also
// acts for them elsewhere), and taking their role away is how an admin cuts it off from the company.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { createdTokenSchema, createTokenBody, errorResponse, entityId, idParams, page, pageQuery, tokenSchema } from '../schemas';
import { newApiToken, sha256Hex } from '../../domain/credentials';
import { ForbiddenError, NotFoundError, ValidationError } from '../../domain/errors';
import { newEntityId } from '../../domain/ids';
import { getToken, insertToken, listTokens, revokeToken, type TokenRecord } from '../../db/repositories/tokens';
import type { Db } from '../../db/knex';
import { audit } from '../audit';
import { enforce } from '../enforce';
import type { Access } from '../http/route';
import type { Authenticate } from '../http/auth';
import type { Principal } from '../http/policy';
import { requireCompany } from '../require-company';

/** A token is its user's: they (and platform admins) may read and revoke it. */
async function requireToken(db: Db, access: Access, id: string): Promise<TokenRecord> {
  const t = await getToken(db, id);
  enforce(access, t && { kind: 'user', userId: t.userId }, 'token', id);
  return t!;
}

const companyTokenParams = z.object({ id: entityId, tokenId: entityId }).strict();

export function tokenRoutes(d: ApiDeps, authenticate: Authenticate) {
  /** Revokes the token and drops it from this process's cache, so it is refused from the next request; audited once. */
  async function revoke(principal: Principal, t: TokenRecord): Promise<void> {
    const revoked = await revokeToken(d.db, t.id);
    if (!revoked) return; // revoked already: nothing changes, nothing more to record
    authenticate.forgetHash(revoked.tokenHash);
    await audit(d.db, principal, { action: 'token.revoked', companyId: t.companyId, target: { type: 'token', id: t.id }, details: { userId: t.userId, name: t.name } });
  }

  return [
    route({
      method: 'post',
      path: '/tokens',
      tag: 'tokens',
      summary: "Create an API token of one's own (e.g. for a factory's machine), optionally limited to one company; the token is in this response only",
      permission: 'self',
      body: createTokenBody,
      status: 201,
      responses: {
        201: { description: 'the token, shown once', schema: createdTokenSchema, headers: { Location: 'the token record' } },
        400: errorResponse('invalid body, or expiresAt not in the future'),
        403: errorResponse('a token limited to one company may only make tokens for that company'),
        404: errorResponse('no such company, or the caller has no role in it'),
      },
      handler: async ({ res, body, principal, access }) => {
        // A company token must not mint a token with more reach than its own.
        const companyId = body.companyId ?? principal.companyId;
        if (principal.companyId !== null && companyId !== principal.companyId) throw new ForbiddenError('a token limited to one company may only make tokens for that company');
        if (companyId !== null) await requireCompany(d.db, access, companyId);
        if (body.expiresAt && Date.parse(body.expiresAt) <= Date.now()) throw new ValidationError('expiresAt: must be in the future', [{ path: 'expiresAt', message: 'must be in the future' }]);
        const token = newApiToken();
        const record = await insertToken(d.db, { id: newEntityId(), name: body.name, tokenHash: sha256Hex(token), userId: principal.userId, companyId, expiresAt: body.expiresAt ?? null, createdBy: principal.credentialId });
        await audit(d.db, principal, { action: 'token.created', companyId, target: { type: 'token', id: record.id }, details: { name: record.name, expiresAt: record.expiresAt } });
        res.location(`/api/v1/tokens/${record.id}`).setHeader('Cache-Control', 'no-store');
        return { ...record, token };
      },
    }),

    route({
      method: 'get',
      path: '/tokens',
      tag: 'tokens',
      summary: "The caller's API tokens (a platform admin: everyone's); never the tokens themselves",
      permission: 'self',
      query: z.object({ ...pageQuery }).strict(),
      responses: { 200: { description: 'a page of tokens', schema: page(tokenSchema) } },
      handler: async ({ query, principal }) => listTokens(d.db, { ...query, userId: principal.platformAdmin ? undefined : principal.userId }),
    }),

    route({
      method: 'get',
      path: '/tokens/:id',
      tag: 'tokens',
      summary: 'Read an API token record',
      permission: 'self',
      params: z.object({ id: entityId }).strict(),
      responses: { 200: { description: 'the token record', schema: tokenSchema }, 404: errorResponse('no such token (or not the caller\'s)') },
      handler: async ({ params, access }) => requireToken(d.db, access, params.id),
    }),

    route({
      method: 'delete',
      path: '/tokens/:id',
      tag: 'tokens',
      summary: 'Revoke an API token: refused (401) from the next request (on other API instances within 5 seconds)',
      permission: 'self',
      params: z.object({ id: entityId }).strict(),
      status: 204,
      responses: { 204: { description: 'revoked (or revoked already)' }, 404: errorResponse("no such token (or not the caller's)") },
      handler: async ({ params, access, principal }) => {
        await revoke(principal, await requireToken(d.db, access, params.id));
        return undefined;
      },
    }),

    route({
      method: 'get',
      path: '/companies/:id/tokens',
      tag: 'tokens',
      summary: "The API tokens limited to the company (its members' scripts and machines), by ID; never the tokens themselves",
      permission: 'tokens:manage',
      params: idParams,
      query: z.object({ ...pageQuery }).strict(),
      responses: { 200: { description: 'a page of token records, revoked ones included (revokedAt)', schema: page(tokenSchema) }, 404: errorResponse('no such company, or the caller has no role in it') },
      handler: async ({ params, query, access }) => {
        await requireCompany(d.db, access, params.id);
        return listTokens(d.db, { ...query, companyId: params.id });
      },
    }),

    route({
      method: 'delete',
      path: '/companies/:id/tokens/:tokenId',
      tag: 'tokens',
      summary: "Revoke a token limited to the company (a member's): refused (401) from the next request (on other API instances within 5 seconds)",
      permission: 'tokens:manage',
      params: companyTokenParams,
      status: 204,
      responses: { 204: { description: 'revoked (or revoked already)' }, 404: errorResponse('no such company (or the caller has no role in it), or no token of it with this ID') },
      handler: async ({ params, access, principal }) => {
        await requireCompany(d.db, access, params.id);
        const t = await getToken(d.db, params.tokenId);
        if (!t || t.companyId !== params.id) throw new NotFoundError('token', params.tokenId);
        await revoke(principal, t);
        return undefined;
      },
    }),
  ];
}
