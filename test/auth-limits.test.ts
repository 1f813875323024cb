// An anonymous caller cannot make the API read its upload, and cannot flush the token cache with a
// flood of made-up tokens.
import net from 'node:net';
import type { Request } from 'express';
import { authenticator } from '../api/http/auth';
import { newApiToken, sha256Hex } from '../domain/credentials';
import { newEntityId } from '../domain/ids';
import { insertToken } from '../db/repositories/tokens';
import { startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack({ worker: false });
});
afterAll(() => s.stop());

/** Sends raw bytes; resolves with what the server answered before it closed (or 10 s passed). */
function raw(bytes: string): Promise<string> {
  const { hostname, port } = new URL(s.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

describe('authentication comes before the body', () => {
  it('refuses an unauthenticated 1 MB upload with 401 without waiting for the body', async () => {
    // Headers announcing 1 MB, then 20 bytes and silence: a server that reads the body first
    // would wait for the rest; this one answers at once and closes.
    const answer = await raw(`POST /api/v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n{"name":"x","count":`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('"unauthorized"');
  });

  it('does not parse the body of a refused request', async () => {
    const junk = '{'.repeat(1024 * 1024 - 100); // 1 MB of invalid JSON, within the body limit
    for (const token of [null, 'rdm_nope', newApiToken()]) {
      const r = await s.api('/api/v1/batches', { token, method: 'POST', headers: { 'content-type': 'application/json' }, body: junk });
      expect(r.status).toBe(401); // not 400 malformed_body
    }
    const manufacturer = await s.token('manufacturer');
    const r = await s.api('/api/v1/companies', { token: manufacturer, method: 'POST', headers: { 'content-type': 'application/json' }, body: junk });
    expect(r.status).toBe(403);
  });

  it('still parses and checks the body of an authenticated caller', async () => {
    const bad = await s.api('/api/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('malformed_body');
    const big = await s.api('/api/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(big.status).toBe(413);
    const ok = await s.api('/api/v1/tokens', { method: 'POST', json: { name: 'after auth' } });
    expect(ok.status).toBe(201);
  });
});

describe('the token cache', () => {
  const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as Request;

  it('keeps a live token cached through a flood of unknown ones, which cost no query when malformed', async () => {
    let lookups = 0;
    const count = (q: { sql: string }) => void (/from "tokens"/.test(q.sql) && lookups++);
    s.db.on('query', count);
    try {
      const clock = 1_000_000; // frozen: the 5 s cache window never passes during the flood
      const authenticate = authenticator(s.db, undefined, { now: () => clock });
      const token = newApiToken();
      const id = newEntityId();
      await insertToken(s.db, { id, name: 'cached', tokenHash: sha256Hex(token), userId: (await s.endUser()).userId });
      expect((await authenticate(request(token))).credentialId).toBe(id);
      expect(lookups).toBe(1);

      // Not of newApiToken's shape: refused without asking Postgres.
      for (let i = 0; i < 10_000; i++) await expect(authenticate(request(`rdm_${i}`))).rejects.toMatchObject({ status: 401 });
      expect(lookups).toBe(1);

      // Well-formed but unknown: one lookup each, remembered apart from the live tokens.
      const unknown = Array.from({ length: 10_000 }, () => newApiToken());
      for (let i = 0; i < unknown.length; i += 10) {
        await Promise.all(unknown.slice(i, i + 10).map((t) => expect(authenticate(request(t))).rejects.toMatchObject({ status: 401 })));
      }
      expect(lookups).toBe(1 + unknown.length);

      // The live token is still answered from the cache: revoked in Postgres, it still passes
      // (until the cache window ends), with no new lookup.
      await s.db('tokens').where({ id }).update({ revoked_at: s.db.fn.now() });
      const before = lookups;
      expect((await authenticate(request(token))).credentialId).toBe(id);
      expect(lookups).toBe(before);
      // A repeated unknown token is answered from the negative cache.
      await expect(authenticate(request(unknown[unknown.length - 1]!))).rejects.toMatchObject({ status: 401 });
      expect(lookups).toBe(before);
    } finally {
      s.db.off('query', count);
    }
  }, 300_000);

  it('forgets a revoked token once the cache window has passed', async () => {
    let clock = 0;
    const authenticate = authenticator(s.db, undefined, { now: () => clock });
    const token = newApiToken();
    const id = newEntityId();
    await insertToken(s.db, { id, name: 'revoked', tokenHash: sha256Hex(token), userId: (await s.endUser()).userId });
    expect((await authenticate(request(token))).credentialId).toBe(id);
    await s.db('tokens').where({ id }).update({ revoked_at: s.db.fn.now() });
    clock += 5_001;
    await expect(authenticate(request(token))).rejects.toMatchObject({ status: 401 });
  });
});
