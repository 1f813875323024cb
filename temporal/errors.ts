// Turns what Temporal says about a workflow call into the domain's errors, in one place, so the
// API and the activities that fan out updates agree on every code.
import { isGrpcServiceError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { AppError, ConflictError, UnavailableError } from '../domain/errors';
import { CREDENTIALS_NOT_SYNCED, STATUS_NOT_RECORDED, UPDATE_REFUSALS } from '../domain/messages';
import { PAIRING_REFUSALS } from '../domain/pairing';

/** Codes that workflow update handlers and validators use, with the HTTP status each stands for. */
const REFUSAL_STATUS: Record<string, number> = {
  ...PAIRING_REFUSALS,
  illegal_transition: 409,
  device_blocked: 409,
  forbidden_transition: 403,
  // Postgres refused the write (the workflow is unchanged): the request cannot succeed as sent.
  [STATUS_NOT_RECORDED]: 422,
  // The broker could not take the device's login (it is down): nothing changed, try again.
  [CREDENTIALS_NOT_SYNCED]: 503,
  [UPDATE_REFUSALS.inProgress]: 409,
  [UPDATE_REFUSALS.notReady]: 409,
  [UPDATE_REFUSALS.notFound]: 404,
  [UPDATE_REFUSALS.tooLate]: 409,
};

/** gRPC status codes (grpc-js `status`) that mean the server could not be reached in time. */
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 20; e = (e as Error & { cause?: unknown }).cause) chain.push(e);
  return chain;
}

export function findApplicationFailure(err: unknown): ApplicationFailure | undefined {
  return causes(err).find((e): e is ApplicationFailure => e instanceof ApplicationFailure);
}

/** True when the error, or one of its causes, is a gRPC error saying Temporal is out of reach. */
export function isTemporalUnreachable(err: unknown): boolean {
  return causes(err).some((e) => isGrpcServiceError(e) && (e.code === GRPC_UNAVAILABLE || e.code === GRPC_DEADLINE_EXCEEDED));
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
  if (isTemporalUnreachable(err)) {
    return new UnavailableError('the workflow service (Temporal) is unreachable');
  }
  throw err;
}
