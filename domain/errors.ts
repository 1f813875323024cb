// The error types every side shares. Each carries the HTTP status and the stable `code` that
// callers program against (design/contract.md: `{ "error": { "code", "message" } }`).

export interface ErrorDetail {
  path?: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super(400, 'validation_failed', message, details);
  }
}
export class UnauthorizedError extends AppError {
  constructor(message = 'a valid bearer token is required') {
    super(401, 'unauthorized', message);
  }
}
export class ForbiddenError extends AppError {
  constructor(message = 'this token may not do that') {
    super(403, 'forbidden', message);
  }
}
export class NotFoundError extends AppError {
  constructor(what: string, id?: string) {
    super(404, 'not_found', id === undefined ? `${what} not found` : `${what} '${id}' not found`);
  }
}
export class ConflictError extends AppError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}
export class UnavailableError extends AppError {
  constructor(message: string) {
    super(503, 'unavailable', message);
  }
}
/** A body past its limit (a firmware image past FIRMWARE_MAX_BYTES): nothing of it is kept. */
export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}
/** The request was sent to a device, which did not answer in time (the outcome is unknown). */
export class DeviceTimeoutError extends AppError {
  constructor(message: string) {
    super(504, 'device_timeout', message);
  }
}
/** Well-formed, but not something this device can take (not settable, out of range). */
export class UnprocessableError extends AppError {
  constructor(code: string, message: string, details?: ErrorDetail[]) {
    super(422, code, message, details);
  }
}
/**
 * Too many attempts (sign-in, sign-up, wrong pairing codes): refused until `retryAfterS` seconds
 * have passed; the error middleware sends that as Retry-After.
 */
export class TooManyRequestsError extends AppError {
  constructor(
    message: string,
    public readonly retryAfterS: number,
    code: 'rate_limited' | 'too_many_attempts' = 'rate_limited',
  ) {
    super(429, code, message);
  }
}
