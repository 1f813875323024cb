// Turns what Temporal says about a workflow call into the domain's errors, in one place, so the
// API and the activities that fan out updates agree on every code.
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { AppError, ConflictError, UnavailableError } from '../domain/errors';

/** Codes that workflow validators use, with the HTTP status each stands for. */
const REFUSAL_STATUS: Record<string, number> = {
  illegal_transition: 409,
  device_blocked: 409,
  forbidden_transition: 403,
};

function findApplicationFailure(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure) return e;
  }
  return undefined;
}

export function toAppError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof WorkflowUpdateFailedError) {
    const failure = findApplicationFailure(err);
    const code = failure?.type ?? 'update_failed';
    const message = failure?.message ?? err.message;
    return new AppError(REFUSAL_STATUS[code] ?? 409, code, message);
  }
  if (err instanceof WorkflowNotFoundError) {
    return new ConflictError('not_ready', `${what} is still being provisioned; try again shortly`);
  }
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new UnavailableError(`${what}: the change was sent but not confirmed in time; read it back before retrying`);
  }
  if (err instanceof Error && /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED/.test(err.message)) {
    return new UnavailableError('the workflow service (Temporal) is unreachable');
  }
  throw err;
}
