// Auth, validation, errors, health and the OpenAPI document, against the real stack.
import { startStack, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  s = await startStack({ worker: false });
});
afterAll(() => s.stop());

const errorBody = async (r: Response) => ((await r.json()) as { error: { code: string; message: string; details?: { path: string }[] } }).error;

describe('auth', () => {
  it('refuses a call without a token', async () => {
    const r = await s.api('/api/v1/batches', { token: null });
    expect(r.status).toBe(401);
    expect(await errorBody(r)).toMatchObject({ code: 'unauthorized' });
  });

  it('refuses an unknown token and a malformed header', async () => {
    expect((await s.api('/api/v1/batches', { token: 'rdm_nope' })).status).toBe(401);
    const r = await fetch(`${s.baseUrl}/api/v1/batches`, { headers: { authorization: 'Basic abc' } });
    expect(r.status).toBe(401);
  });

  it('limits a manufacturer to the manufacturer calls', async () => {
    const m = await s.token('manufacturer');
    expect((await s.api('/api/v1/batches', { token: m })).status).toBe(200);
    const create = await s.api('/api/v1/batches', { token: m, method: 'POST', json: { companyId: s.companyId, name: 'x', count: 1 } });
    expect(create.status).toBe(403);
    expect(await errorBody(create)).toMatchObject({ code: 'forbidden' });
    expect((await s.api('/api/v1/companies', { token: m, method: 'POST', json: { name: 'escalate' } })).status).toBe(403);
    expect((await s.api('/api/v1/users', { token: m, method: 'POST', json: { email: 'x@example.com', password: 'long enough password' } })).status).toBe(403);
    expect((await s.api(`/api/v1/companies/${s.companyId}/participations`, { token: m })).status).toBe(403);
  });

  it('creates an API token shown once, stored hashed, and revocable', async () => {
    const r = await s.api('/api/v1/tokens', { method: 'POST', json: { name: 'Acme Factory' } });
    expect(r.status).toBe(201);
    const created = (await r.json()) as { id: string; token: string; companyId: string | null };
    expect(created.companyId).toBeNull();
    expect(created.token).toMatch(/^rdm_/);
    const stored = await s.db('tokens').where({ id: created.id }).first();
    expect(JSON.stringify(stored)).not.toContain(created.token);

    const listed = (await (await s.api('/api/v1/tokens?limit=1000')).json()) as { items: Record<string, unknown>[] };
    const mine = listed.items.find((t) => t.id === created.id)!;
    expect(mine).toBeDefined();
    expect(mine.token).toBeUndefined();

    expect((await s.api('/api/v1/devices', { token: created.token })).status).toBe(200);
    expect((await s.api(`/api/v1/tokens/${created.id}`, { method: 'DELETE' })).status).toBe(204);
    // revocation takes effect once the 5 s cache entry expires (the deadline leaves room for a busy machine)
    const until = Date.now() + 30_000;
    let status = 200;
    while (status === 200 && Date.now() < until) {
      status = (await s.api('/api/v1/devices', { token: created.token })).status;
      if (status === 200) await new Promise((res) => setTimeout(res, 250));
    }
    expect(status).toBe(401);
    expect((await s.api('/api/v1/tokens/0000000000000000', { method: 'DELETE' })).status).toBe(404);
  });
});

describe('bad input', () => {
  const cases: [string, unknown, string][] = [
    ['negative count', { name: 'b', count: -1 }, 'count'],
    ['zero count', { name: 'b', count: 0 }, 'count'],
    ['huge count', { name: 'b', count: 100_001 }, 'count'],
    ['fractional count', { name: 'b', count: 1.5 }, 'count'],
    ['count as a string', { name: 'b', count: '10' }, 'count'],
    ['missing name', { count: 10 }, 'name'],
    ['blank name', { name: '   ', count: 10 }, 'name'],
    ['overlong name', { name: 'x'.repeat(201), count: 10 }, 'name'],
    ['bad colour', { name: 'b', count: 10, color: 'red' }, 'color'],
    ['unknown field', { name: 'b', count: 10, colour: '#FF0000' }, 'colour'],
    ['info of the wrong type', { name: 'b', count: 10, info: 42 }, 'info'],
  ];
  it.each(cases)('answers 400 naming the field for a %s, and creates nothing', async (_what, body, field) => {
    const before = await s.db('batches').count<{ count: string }[]>('* as count');
    const r = await s.api('/api/v1/batches', { method: 'POST', json: body });
    expect(r.status).toBe(400);
    const e = await errorBody(r);
    expect(e.code).toBe('validation_failed');
    expect(e.message).toContain(field);
    expect(e.details!.map((d) => d.path)).toContain(field);
    const after = await s.db('batches').count<{ count: string }[]>('* as count');
    expect(after).toEqual(before);
  });

  it('answers 400 for malformed JSON and a missing body', async () => {
    const r = await s.api('/api/v1/batches', { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(await errorBody(r)).toMatchObject({ code: 'malformed_body' });
    expect((await s.api('/api/v1/batches', { method: 'POST' })).status).toBe(400);
  });

  it('answers 400 for bad filters and cursors', async () => {
    expect((await s.api('/api/v1/devices?status=broken')).status).toBe(400);
    expect((await s.api('/api/v1/devices?limit=0')).status).toBe(400);
    expect((await s.api('/api/v1/devices?limit=abc')).status).toBe(400);
    expect((await s.api('/api/v1/devices?online=maybe')).status).toBe(400);
    expect((await s.api('/api/v1/devices?cursor=garbage')).status).toBe(400);
    expect((await s.api('/api/v1/devices?unknown=1')).status).toBe(400);
  });

  it('answers 404 in the contract shape for unknown things', async () => {
    const r = await s.api('/api/v1/devices/ABCDEFGHJKMN');
    expect(r.status).toBe(404);
    expect(await errorBody(r)).toMatchObject({ code: 'not_found' });
    expect((await s.api('/api/v1/batches/0000000000000000')).status).toBe(404);
    expect((await s.api('/api/v1/devices/not-an-id')).status).toBe(400);
    const route = await s.api('/api/v1/nothing-here');
    expect(route.status).toBe(404);
    expect(await errorBody(route)).toMatchObject({ code: 'route_not_found' });
  });
});

describe('health and documentation', () => {
  it('answers liveness and readiness, naming each dependency', async () => {
    expect(await (await fetch(`${s.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    const r = await fetch(`${s.baseUrl}/readyz`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
    expect(Object.keys(body.checks).sort()).toEqual(['postgres', 'temporal']);
  });

  it('serves an OpenAPI document generated from the validating schemas', async () => {
    const doc = (await (await fetch(`${s.baseUrl}/api/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { maximum?: number }>; additionalProperties?: boolean } }> } }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/v1/batches', '/api/v1/batches/{id}', '/api/v1/batches/{id}/devices.csv', '/api/v1/batches/{id}/bundle.zip', '/api/v1/devices', '/api/v1/devices/{id}', '/api/v1/devices/{id}/status', '/api/v1/devices/{id}/qr.png', '/api/v1/tokens', '/healthz', '/readyz']) {
      expect(doc.paths[p]).toBeDefined();
    }
    const body = doc.paths['/api/v1/batches']!.post!.requestBody!.content['application/json']!.schema;
    expect(body.properties.count!.maximum).toBe(100_000);
    expect(body.additionalProperties).toBe(false);
  });
});
