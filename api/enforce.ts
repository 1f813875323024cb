// Turns the policy's answer about one resource into the HTTP answer: 404 when the caller has no
// relation to it (or it does not exist: the two look alike), 403 when they lack the permission.
import { ForbiddenError, NotFoundError } from '../domain/errors';
import { decide, type Resource } from './http/policy';
import type { Access } from './http/route';

export function enforce(access: Access, resource: Resource | null, what: string, id: string): void {
  const decision = resource ? decide(access.principal, access.permission, resource) : 'hidden';
  if (decision === 'hidden') throw new NotFoundError(what, id);
  if (decision === 'forbidden') throw new ForbiddenError(`you may not do this to ${what} '${id}' (needs '${access.permission}')`);
}
