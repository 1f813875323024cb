// Users and sign-in: accounts (open sign-up of end users unless SIGNUP=closed), sessions, /me,
// and a person's record as those allowed to see it do (themselves, their companies' admins).
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { changePasswordBody, createUserBody, errorResponse, findUsersQuery, idParams, meSchema, page, personRecordSchema, personSchema, sessionSchema, signInBody, userSchema } from '../schemas';
import { AppError, ConflictError, ForbiddenError, TooManyRequestsError, UnauthorizedError, UnavailableError } from '../../domain/errors';
import { newEntityId } from '../../domain/ids';
import { newSessionToken, sha256Hex } from '../../domain/credentials';
import { hashPassword, verifyPassword } from '../../domain/passwords';
import { findUserByEmail, findUserForSignIn, getUser, insertUser, normalEmail, passwordHashOf, setPasswordHash, type User } from '../../db/repositories/users';
import { participationsOfUser } from '../../db/repositories/companies';
import { insertSession, revokeOtherSessions, revokeSession } from '../../db/repositories/sessions';
import { audit } from '../audit';
import type { Authenticate } from '../http/auth';
import type { Response } from 'express';
import type { SignInLimiter } from '../sign-in-limiter';
import { PasswordGate } from '../password-gate';
import { enforce } from '../enforce';
import { decide } from '../http/policy';

const DEFAULT_SESSION_TTL_S = 12 * 3_600;

/** A person as others see them: never the password hash, nor whether they are a platform admin. */
const person = (u: User) => ({ id: u.id, email: u.email, name: u.name, createdAt: u.createdAt });

/** Takes an attempt, or answers 429 with Retry-After. */
function limit(limiter: SignInLimiter, email: string, address: string, res: Response, what: string): void {
  const wait = limiter.take(email, address);
  if (wait === 0) return;
  throw new TooManyRequestsError(`too many ${what}: retry in ${wait} s`, wait);
}

export function userRoutes(d: ApiDeps, limiters: { signIn: SignInLimiter; signUp: SignInLimiter }, authenticate: Authenticate, gate = new PasswordGate()) {
  /** Hashes through the gate; a full queue is a 503 with Retry-After. */
  async function gated<T>(res: Response, work: () => Promise<T>): Promise<T> {
    try {
      return await gate.run(work);
    } catch (err) {
      if (err instanceof UnavailableError) res.setHeader('Retry-After', '1');
      throw err;
    }
  }
  const signupOpen = () => (d.signup ?? 'open') === 'open';
  return [
    route({
      method: 'post',
      path: '/users',
      tag: 'people',
      summary: 'Create a user: a platform or company admin, or anyone (open sign-up of end users) unless SIGNUP=closed',
      permission: 'users:create',
      anonymous: signupOpen,
      body: createUserBody,
      status: 201,
      responses: {
        201: { description: 'the user (never the password)', schema: userSchema },
        401: errorResponse('a token was sent but is unknown, revoked or expired; or sign-up is closed and none was sent'),
        403: errorResponse("the caller may not create users (needs 'users:create'), or only a platform admin may create a platform admin"),
        409: errorResponse('a user with this email exists (email_taken)'),
        429: { ...errorResponse('too many sign-ups from this address: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
        503: { ...errorResponse('too many passwords being hashed at once: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
      },
      handler: async ({ req, res, body, caller }) => {
        if (caller === null) limit(limiters.signUp, '', req.ip ?? 'unknown', res, 'sign-ups');
        if (body.platformAdmin && !caller?.platformAdmin) throw new ForbiddenError('only a platform admin may create a platform admin');
        const user = await insertUser(d.db, { id: newEntityId(), email: body.email, name: body.name ?? null, passwordHash: await gated(res, () => hashPassword(body.password)), platformAdmin: body.platformAdmin ?? false, createdBy: caller?.userId ?? null });
        if (!user) throw new ConflictError('email_taken', 'a user with this email exists');
        await audit(d.db, caller, { action: 'user.created', target: { type: 'user', id: user.id }, details: { platformAdmin: user.platformAdmin, signUp: caller === null } });
        return user;
      },
    }),

    route({
      method: 'post',
      path: '/sessions',
      tag: 'people',
      summary: 'Sign in with email and password: a session token, valid until expiresAt',
      permission: null,
      body: signInBody,
      status: 201,
      responses: {
        201: { description: 'signed in: the token is in this response only', schema: sessionSchema },
        401: errorResponse('wrong email or password (the same answer for both)'),
        429: { ...errorResponse('too many attempts for this account or from this address: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
        503: { ...errorResponse('too many sign-ins being checked at once: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
      },
      handler: async ({ req, res, body }) => {
        const email = normalEmail(body.email);
        const address = req.ip ?? 'unknown'; // the socket's, unless Express is told to trust a proxy
        limit(limiters.signIn, email, address, res, 'sign-in attempts');
        const found = await findUserForSignIn(d.db, email);
        // An unknown email costs one scrypt too (against a decoy hash): it answers like a wrong password, as slowly.
        const ok = await gated(res, () => verifyPassword(body.password, found?.passwordHash ?? null));
        if (!found || !ok) throw new UnauthorizedError('wrong email or password');
        limiters.signIn.refund(email, address);
        const token = newSessionToken();
        const expiresAt = new Date(Date.now() + (d.sessionTtlS ?? DEFAULT_SESSION_TTL_S) * 1000);
        await insertSession(d.db, { id: newEntityId(), userId: found.user.id, tokenHash: sha256Hex(token), expiresAt });
        res.setHeader('Cache-Control', 'no-store');
        return { token, expiresAt: expiresAt.toISOString(), user: found.user };
      },
    }),

    route({
      method: 'delete',
      path: '/sessions/current',
      tag: 'people',
      summary: 'Sign out: the session token of this request stops working',
      permission: 'self',
      status: 204,
      responses: { 204: { description: 'signed out' }, 409: errorResponse('this request was not made with a session token (not_a_session): revoke API tokens with DELETE /tokens/{id}') },
      handler: async ({ req, principal }) => {
        if (principal.via !== 'session') throw new ConflictError('not_a_session', 'this request was not made with a session token');
        await revokeSession(d.db, principal.credentialId);
        authenticate.forget(req);
        return undefined;
      },
    }),

    route({
      method: 'put',
      path: '/me/password',
      tag: 'people',
      summary: "Change one's password (the current one is asked again); every other session of the account ends",
      permission: 'self',
      body: changePasswordBody,
      status: 204,
      responses: {
        204: { description: 'changed; sessions other than this request\'s are signed out (API tokens stay: revoke them with DELETE /tokens/{id})' },
        400: errorResponse('invalid body: the new password too short or long, or the same as the current one'),
        403: errorResponse('the current password is wrong (wrong_password), or the account has no password (no_password)'),
        429: { ...errorResponse('too many attempts for this account or from this address: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
        503: { ...errorResponse('too many passwords being hashed at once: retry after Retry-After seconds'), headers: { 'Retry-After': 'seconds to wait' } },
      },
      handler: async ({ req, res, body, principal }) => {
        const address = req.ip ?? 'unknown';
        // The same budget as sign-in: a stolen session must not become a way to guess the password.
        limit(limiters.signIn, normalEmail(principal.email), address, res, 'password attempts');
        const current = await passwordHashOf(d.db, principal.userId);
        if (current === null) throw new AppError(403, 'no_password', 'this account has no password to change');
        if (!(await gated(res, () => verifyPassword(body.currentPassword, current)))) throw new AppError(403, 'wrong_password', 'the current password is wrong');
        limiters.signIn.refund(normalEmail(principal.email), address);
        await setPasswordHash(d.db, principal.userId, await gated(res, () => hashPassword(body.newPassword)));
        const ended = await revokeOtherSessions(d.db, principal.userId, principal.via === 'session' ? principal.credentialId : null);
        await audit(d.db, principal, { action: 'user.password_changed', target: { type: 'user', id: principal.userId }, details: { sessionsEnded: ended } });
        return undefined;
      },
    }),

    route({
      method: 'get',
      path: '/users/:id',
      tag: 'people',
      summary: "A person's record and roles: to themselves, platform admins, and admins of a company they have a role in (who see the roles in their own companies only)",
      permission: 'users:read',
      params: idParams,
      responses: { 200: { description: 'the person', schema: personRecordSchema }, 404: errorResponse('no such user, or not one the caller may see (the two answers are the same)') },
      handler: async ({ params, access, principal }) => {
        const [user, participations] = await Promise.all([getUser(d.db, params.id), participationsOfUser(d.db, params.id)]);
        enforce(access, user && { kind: 'user', userId: user.id, companyIds: participations.map((p) => p.companyId) }, 'user', params.id);
        // Their roles elsewhere are none of a company admin's business.
        const shown = user!.id === principal.userId ? participations : participations.filter((p) => decide(principal, 'users:read', { kind: 'company', companyId: p.companyId }) === 'allow');
        return { ...person(user!), participations: shown };
      },
    }),

    route({
      method: 'get',
      path: '/users',
      tag: 'people',
      summary: 'Find a person by their exact email (to give them a role, or share a device with them): platform and company admins',
      permission: 'participations:manage',
      query: findUsersQuery,
      responses: { 200: { description: 'the account with that email, or none: at most one item, never a partial match', schema: page(personSchema) } },
      handler: async ({ query }) => {
        const user = await findUserByEmail(d.db, query.email);
        return { items: user ? [person(user)] : [], nextCursor: null };
      },
    }),

    route({
      method: 'get',
      path: '/me',
      tag: 'people',
      summary: 'Who is calling: the user, their roles in companies, and the credential used',
      permission: 'self',
      responses: { 200: { description: 'the caller', schema: meSchema } },
      handler: async ({ principal }) => {
        const [user, participations] = await Promise.all([getUser(d.db, principal.userId), participationsOfUser(d.db, principal.userId)]);
        return { user: user!, participations, credential: { via: principal.via, id: principal.credentialId, companyId: principal.companyId } };
      },
    }),
  ];
}
