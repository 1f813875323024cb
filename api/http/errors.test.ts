// The error middleware's answers for the domain's errors: the contract's body, and for a 429 when
// to retry (a pairing's wrong-code limit, say).
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { TooManyRequestsError } from '../../domain/errors';
import { errorHandler } from './errors';

it('answers a TooManyRequestsError 429 with Retry-After and the JSON error body', async () => {
  const app = express();
  app.get('/limited', () => {
    throw new TooManyRequestsError('too many wrong pairing codes for this device; try again later', 731, 'too_many_attempts');
  });
  app.use(errorHandler(pino({ level: 'silent' })));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/limited`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('731');
    expect(await res.json()).toEqual({ error: { code: 'too_many_attempts', message: 'too many wrong pairing codes for this device; try again later' } });
  } finally {
    server.close();
  }
});
