// One error middleware: domain errors and validation errors become the contract's JSON body;
// anything else is a 500 with an id to find it in the logs, never a stack trace.
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ZodError } from 'zod';
import { KnexTimeoutError } from 'knex';
import { AppError, TooManyRequestsError, UnavailableError, ValidationError } from '../../domain/errors';
import type { Logger } from '../../runtime/logger';

export function zodToValidationError(err: ZodError, where: string): ValidationError {
  const details = err.issues.map((i) => {
    const p = i.path.join('.');
    const unknownKeys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : null;
    if (unknownKeys) return { path: [p, ...unknownKeys].filter(Boolean).join('.'), message: `unknown field${unknownKeys.length > 1 ? 's' : ''}: ${unknownKeys.join(', ')}` };
    return { path: p || where, message: i.message };
  });
  return new ValidationError(details.map((d) => `${d.path}: ${d.message}`).join('; '), details);
}

export function notFoundHandler(req: Request, _res: Response, next: NextFunction) {
  next(new AppError(404, 'route_not_found', `no route ${req.method} ${req.path}`));
}

export function errorHandler(log: Logger) {
  // Express recognises error middleware by its four parameters.
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e: AppError;
    if (err instanceof AppError) e = err;
    else if (err instanceof ZodError) e = zodToValidationError(err, 'body');
    // Every pooled connection stayed busy for acquireConnectionTimeout: overload, not a bug.
    else if (err instanceof KnexTimeoutError) e = new UnavailableError('the database is busy; retry shortly');
    else if (isBodyParserError(err)) e = new AppError(err.status, err.status === 413 ? 'payload_too_large' : 'malformed_body', err.status === 413 ? 'the request body is too large' : 'the request body is not valid JSON');
    else {
      const id = randomUUID();
      log.error({ err, errorId: id, method: req.method, path: req.path }, 'unhandled error');
      e = new AppError(500, 'internal', `internal error (id ${id})`);
    }
    if (res.headersSent) {
      res.destroy(); // a stream failed half-way: cut it so the client sees a broken download, not a short one
      return;
    }
    if (e instanceof TooManyRequestsError) res.setHeader('Retry-After', String(e.retryAfterS));
    res.status(e.status).json({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
  };
}

function isBodyParserError(err: unknown): err is { status: number; type: string } {
  const e = err as { status?: unknown; type?: unknown } | null;
  return typeof e === 'object' && e !== null && typeof e.type === 'string' && typeof e.status === 'number' && e.status < 500;
}
