// What Temporal's errors become, produced for real: a server nobody answers at, a workflow that
// does not exist, an update its workflow refuses, and an error that is not Temporal's at all.
import { Client, Connection } from '@temporalio/client';
import { ConflictError, UnavailableError } from '../domain/errors';
import { freePort } from '../runtime/embedded/free-port';
import { testEnv } from '../test/support/env';
import { isTemporalUnreachable, toAppError } from './errors';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

it('a server that does not answer is "unreachable" (503), whether refused or past its deadline', async () => {
  const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
  const client = new Client({ connection });
  try {
    const err = await rejection(connection.withDeadline(Date.now() + 1_500, () => client.workflow.getHandle('device-NOPE').describe()));
    expect(isTemporalUnreachable(err)).toBe(true);
    const mapped = toAppError(err, "device 'NOPE'");
    expect(mapped).toBeInstanceOf(UnavailableError);
    expect(mapped.status).toBe(503);
  } finally {
    await connection.close();
  }
});

describe('against the real server', () => {
  let connection: Connection;
  let client: Client;
  beforeAll(async () => {
    connection = await Connection.connect({ address: testEnv().temporalAddress });
    client = new Client({ connection });
  });
  afterAll(() => connection.close());

  it('a workflow that does not exist is not "unreachable", and maps to 409 not_ready', async () => {
    const err = await rejection(client.workflow.getHandle(`device-missing-${Date.now()}`).describe());
    expect(isTemporalUnreachable(err)).toBe(false);
    const mapped = toAppError(err, "device 'X'");
    expect(mapped).toBeInstanceOf(ConflictError);
    expect(mapped.code).toBe('not_ready');
  });

  it('an error that is not Temporal\'s is rethrown, never turned into a status', () => {
    const err = new TypeError('a bug');
    expect(isTemporalUnreachable(err)).toBe(false);
    expect(() => toAppError(err, 'x')).toThrow(err);
  });
});
