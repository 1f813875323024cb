// Which activity errors no retry can fix, in one place. Every activity is wrapped by
// `classifyFailures` (activities/index.ts): a permanent error leaves it as a non-retryable
// ApplicationFailure, so the workflow learns at once instead of after every attempt.
// Errors are matched by type (Postgres SQLSTATE class, our error classes), never by message.
import { ApplicationFailure } from '@temporalio/common';
import { DatabaseError } from 'pg';
import { AppError } from '../domain/errors';

/**
 * SQLSTATE classes that the same statement will hit again: 22 data exception (a NUL in a text
 * value, a value out of range), 23 integrity constraint violation (a foreign key to a deleted
 * row, a NOT NULL). Connection, lock and resource errors (08, 40, 53, 57) stay retryable.
 */
const PERMANENT_SQLSTATE_CLASSES = new Set(['22', '23']);

/** The failure type Temporal records for a Postgres error: `postgres_<SQLSTATE>`. */
export const postgresFailureType = (sqlState: string) => `postgres_${sqlState}`;

/** A permanent error as a non-retryable ApplicationFailure; anything else as it was. */
export function classifyFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof DatabaseError && err.code && PERMANENT_SQLSTATE_CLASSES.has(err.code.slice(0, 2))) {
    return ApplicationFailure.create({ message: err.message, type: postgresFailureType(err.code), nonRetryable: true, cause: err });
  }
  // Our own errors below 500 (unknown row, refused input) are answers, not outages.
  if (err instanceof AppError && err.status < 500) {
    return ApplicationFailure.create({ message: err.message, type: err.code, nonRetryable: true, details: [err.status], cause: err });
  }
  return err;
}

type AnyActivity = (...args: never[]) => Promise<unknown>;

/** Wraps each activity so that what it throws goes through classifyFailure. */
export function classifyFailures<T extends Record<string, AnyActivity>>(activities: T): T {
  const wrapped: Record<string, AnyActivity> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw classifyFailure(err);
      }
    };
  }
  return wrapped as T;
}
