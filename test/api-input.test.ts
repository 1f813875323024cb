// Bad input is refused at the API edge with a 400 that names the field, and changes nothing:
// strings Postgres cannot store, JSON documents too deep or too big, cursors that are not ours,
// dates outside what Postgres stores, lenient numbers. And the OpenAPI document says all of it.
import type { Batch } from '../domain/model';
import { encodeCursor } from '../db/pagination';
import { NO_NUL_TEXT } from '../domain/json-limits';
import { eventually, startStack, type Stack } from './support/stack';

let s: Stack;
let deviceId: string;
let batchId: string;
beforeAll(async () => {
  s = await startStack();
  const r = await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'api-input', count: 1 } });
  const batch = (await r.json()) as Batch;
  batchId = batch.id;
  await eventually(async () => ((await (await s.api(`/api/v1/batches/${batch.id}`)).json()) as Batch).provisioning.status === 'ready');
  deviceId = (await s.db('devices').where({ batch_id: batch.id }).first('id')).id as string;
}, 120_000);
afterAll(() => s.stop());

interface ErrorBody {
  code: string;
  message: string;
  details?: { path: string; message: string }[];
}
async function refused(r: Response, path: string, status = 400): Promise<ErrorBody> {
  const body = (await r.json()) as { error: ErrorBody };
  expect({ status: r.status, code: body.error.code }).toEqual({ status, code: status === 400 ? 'validation_failed' : expect.any(String) });
  expect(body.error.details?.map((d) => d.path)).toContain(path);
  expect(body.error.message).toContain(path);
  return body.error;
}

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'a\ud800b';

describe('strings Postgres cannot store', () => {
  it.each([NUL, LONE_SURROGATE])('refuses them in a batch name and info (%j), and creates no batch', async (bad) => {
    const before = await s.db('batches').count({ n: '*' }).first();
    await refused(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: bad, count: 1 } }), 'name');
    await refused(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'ok', info: bad, count: 1 } }), 'info');
    expect(await s.db('batches').count({ n: '*' }).first()).toEqual(before);
  });

  it("refuses them in a status change's reason, and the device keeps its status", async () => {
    await refused(await s.api(`/api/v1/devices/${deviceId}/status`, { method: 'POST', json: { status: 'manufacturing', reason: NUL } }), 'reason');
    expect((await s.db('devices').where({ id: deviceId }).first('status')).status).toBe('new');
  });

  it("refuses them in a token's name and an alert rule's name", async () => {
    await refused(await s.api('/api/v1/tokens', { method: 'POST', json: { name: NUL } }), 'name');
    const rule = { name: NUL, node: 'charger', property: 'temperature', operator: '>', threshold: 1 };
    await refused(await s.api('/api/v1/alert-rules', { method: 'POST', json: rule }), 'name');
  });

  it('refuses them anywhere inside a config document or command arguments: values and names', async () => {
    await refused(await s.api(`/api/v1/devices/${deviceId}/config`, { method: 'PATCH', json: { wifi: { ssid: NUL } } }), 'wifi.ssid');
    await refused(await s.api(`/api/v1/devices/${deviceId}/config`, { method: 'PATCH', json: { wifi: { list: ['ok', LONE_SURROGATE] } } }), 'wifi.list.1');
    await refused(await s.api(`/api/v1/devices/${deviceId}/config`, { method: 'PATCH', json: { wifi: { [NUL]: 1 } } }), `wifi.${NUL}`);
    await refused(await s.api(`/api/v1/devices/${deviceId}/commands`, { method: 'POST', json: { command: 'ping', args: { x: [NUL] } } }), 'args.x.0');
    expect((await s.db('device_config').where({ device_id: deviceId }).first()) ?? { desired: {} }).toMatchObject({ desired: {} });
  });

  it('refuses them in a cursor', async () => {
    await refused(await s.api(`/api/v1/batches?cursor=${encodeURIComponent(NUL)}`), 'cursor');
  });
});

describe('config documents and command arguments have a depth and a size', () => {
  const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const patch = (raw: string) => s.api(`/api/v1/devices/${deviceId}/config`, { method: 'PATCH', body: raw, headers: { 'content-type': 'application/json' } });

  it('refuses a document nested 5,000 deep (no stack overflow), and 33 deep; takes 32', async () => {
    const deep = await refused(await patch(nested(5_000)), 'a'.concat('.a'.repeat(31)));
    expect(deep.details![0]!.message).toMatch(/at most 32 deep/);
    await refused(await patch(nested(33)), 'a'.concat('.a'.repeat(31)));
    expect((await patch(nested(32))).status).toBe(200);
    await refused(await s.api(`/api/v1/devices/${deviceId}/commands`, { method: 'POST', body: `{"command":"ping","args":${nested(100)}}`, headers: { 'content-type': 'application/json' } }), 'args'.concat('.a'.repeat(32)));
  });

  it('refuses a document over 64 KiB as JSON', async () => {
    const e = await refused(await s.api(`/api/v1/devices/${deviceId}/config`, { method: 'PATCH', json: { big: 'x'.repeat(70_000) } }), 'body');
    expect(e.message).toMatch(/65536 bytes/);
  });

  it('bounds the merged document too: small patches cannot grow it past 64 KiB', async () => {
    const id = deviceId;
    const chunk = 'y'.repeat(20_000);
    for (const k of ['p1', 'p2', 'p3']) expect((await s.api(`/api/v1/devices/${id}/config`, { method: 'PATCH', json: { [k]: chunk } })).status).toBe(200);
    const e = await refused(await s.api(`/api/v1/devices/${id}/config`, { method: 'PATCH', json: { p4: chunk } }), 'body');
    expect(e.message).toMatch(/after this change/);
    const stored = await s.db('device_config').where({ device_id: id }).first();
    expect(Object.keys(stored.desired)).toEqual(expect.arrayContaining(['p1', 'p2', 'p3']));
    expect(stored.desired).not.toHaveProperty('p4');
  });
});

describe('cursors that decode but are not ours', () => {
  const c = (key: unknown[]) => encodeCursor(key);
  it.each([
    ['/api/v1/batches', [123, 'X']],
    ['/api/v1/batches', ['2024-02-31 00:00:00+00', 'X']],
    ['/api/v1/batches', ['not a date', 'X']],
    ['/api/v1/batches', ['2024-01-01T00:00:00.000Z', 'X'.repeat(300)]],
    ['/api/v1/batches', ['2024-01-01T00:00:00.000Z']],
    ['/api/v1/tokens', [{}]],
    ['/api/v1/devices', [7]],
    ['/api/v1/alerts', ['0000-01-01 00:00:00+00', 'X']],
    ['/api/v1/alert-rules', [null]],
  ])('%s with %j is a 400 naming cursor', async (path, key) => {
    await refused(await s.api(`${path}?cursor=${c(key)}`), 'cursor');
  });

  it('on per-device lists too: commands, logs, telemetry', async () => {
    await refused(await s.api(`/api/v1/devices/${deviceId}/commands?cursor=${c([true, 'X'])}`), 'cursor');
    await refused(await s.api(`/api/v1/devices/${deviceId}/commands?cursor=${c(['2024-13-01 00:00:00+00', 'X'])}`), 'cursor');
    await refused(await s.api(`/api/v1/devices/${deviceId}/logs?cursor=${c(['2024-01-01 00:00:00+00', '1'])}`), 'cursor');
    await refused(await s.api(`/api/v1/devices/${deviceId}/telemetry?cursor=${c(['2024-01-01 00:00:00+00', 5, 'p'])}`), 'cursor');
  });

  it('still follows its own cursors', async () => {
    await s.token('manufacturer');
    await s.token('manufacturer');
    const first = (await (await s.api('/api/v1/tokens?limit=1')).json()) as { nextCursor: string };
    expect(first.nextCursor).toEqual(expect.any(String));
    expect((await s.api(`/api/v1/tokens?limit=1&cursor=${first.nextCursor}`)).status).toBe(200);
    const batches = (await (await s.api('/api/v1/batches?limit=1')).json()) as { items: unknown[]; nextCursor: string | null };
    expect(batches.items).toHaveLength(1);
  });
});

describe('dates and bucket widths', () => {
  const telemetry = (q: string) => s.api(`/api/v1/devices/${deviceId}/telemetry?${q}`);
  it.each([
    ['from', '-010000-01-01'],
    ['from', '-010000-01-01T00:00:00Z'],
    ['to', '+275760-09-13T00:00:00Z'],
    ['from', '0000-01-01T00:00:00Z'],
    ['to', '2024-02-30T00:00:00Z'],
    ['from', 'yesterday'],
  ])('telemetry %s=%s is a 400 naming it', async (field, value) => {
    await refused(await telemetry(`${field}=${encodeURIComponent(value)}`), field);
  });

  it('logs from/to outside the years 0001-9999 are a 400', async () => {
    await refused(await s.api(`/api/v1/devices/${deviceId}/logs?from=${encodeURIComponent('-010000-01-01T00:00:00Z')}`), 'from');
    await refused(await s.api(`/api/v1/devices/${deviceId}/logs?to=${encodeURIComponent('+275760-09-13T00:00:00Z')}`), 'to');
    expect((await s.api(`/api/v1/devices/${deviceId}/logs?from=2024-01-01T00:00:00Z&to=${encodeURIComponent('2024-01-02T00:00:00+02:00')}`)).status).toBe(200);
  });

  it('refuses a bucket that would overflow, is over 366 days, or makes too many buckets', async () => {
    const from = encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString());
    const q = `node=charger&property=temperature&from=${from}`;
    await refused(await telemetry(`${q}&bucket=99999999999999d`), 'bucket');
    await refused(await telemetry(`${q}&bucket=367d`), 'bucket');
    await refused(await telemetry(`${q}&bucket=0.5s`), 'bucket');
    await refused(await telemetry(`node=charger&property=temperature&from=2000-01-01T00:00:00Z&bucket=1s`), 'bucket');
    const ok = await telemetry(`${q}&bucket=1h`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ bucketSeconds: 3600, buckets: [] });
    expect((await telemetry(`${q}&bucket=366d`)).status).toBe(200);
  });
});

describe('numbers in query strings', () => {
  it.each(['0x2', '1e1', ' 5', '+5', '05', '2.0', '-1', '0', '1001', '99999999999999999999'])('limit=%j is a 400 naming limit', async (v) => {
    await refused(await s.api(`/api/v1/batches?limit=${encodeURIComponent(v)}`), 'limit');
    await refused(await s.api(`/api/v1/devices/${deviceId}/commands?limit=${encodeURIComponent(v)}`), 'limit');
  });

  it('takes plain decimal digits', async () => {
    const r = await s.api('/api/v1/batches?limit=1');
    expect(r.status).toBe(200);
    expect(((await r.json()) as { items: unknown[] }).items).toHaveLength(1);
  });
});

describe('per-device routes', () => {
  it('GET /devices/{unknown}/commands is a 404 like every other per-device route', async () => {
    const r = await s.api('/api/v1/devices/000000000000/commands');
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: ErrorBody }).error.code).toBe('not_found');
    expect((await s.api(`/api/v1/devices/${deviceId}/commands`)).status).toBe(200);
  });

  it('an Idempotency-Key that is not printable ASCII is a 400 naming it', async () => {
    await refused(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'k', count: 1 }, headers: { 'idempotency-key': 'k'.repeat(201) } }), 'idempotency-key');
    await refused(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'k', count: 1 }, headers: { 'idempotency-key': 'a\tb' } }), 'idempotency-key');
  });
});

// ---- the document ----
type Json = Record<string, any>;
let doc: Json;
const operations = () =>
  Object.entries(doc.paths as Json).flatMap(([path, ops]) => Object.entries(ops as Json).map(([method, op]) => ({ path, method, op: op as Json, id: `${method} ${path}` })));
const ERROR_REF = '#/components/schemas/Error';

describe('the OpenAPI document', () => {
  beforeAll(async () => {
    doc = (await (await s.api('/api/v1/openapi.json', { token: null })).json()) as Json;
  });

  it('gives every operation a unique operationId', () => {
    const ids = operations().map((o) => o.op.operationId as string);
    expect(ids.every((id) => typeof id === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents 400 wherever input is validated, 413 wherever a body is accepted, 401/403 where a token is needed, 500 everywhere', () => {
    const missing: string[] = [];
    for (const { id, op } of operations()) {
      const has = (code: string) => op.responses[code] !== undefined || missing.push(`${id} ${code}`);
      if (op.parameters.length > 0 || op.requestBody) has('400');
      if (op.requestBody) has('413');
      if (op.security.length > 0) {
        has('401');
        has('403');
      }
      has('500');
    }
    expect(missing).toEqual([]);
  });

  it('gives every error response the Error schema, whose details carry path and message', () => {
    const wrong: string[] = [];
    for (const { id, op } of operations()) {
      for (const [code, resp] of Object.entries(op.responses as Json)) {
        if (Number(code) < 400 || id === 'get /readyz') continue;
        if (resp.content?.['application/json']?.schema?.$ref !== ERROR_REF) wrong.push(`${id} ${code}`);
      }
    }
    expect(wrong).toEqual([]);
    const details = doc.components.schemas.Error.properties.error.properties.details;
    expect(details).toMatchObject({ type: 'array', items: { required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } });
  });

  it('documents the Location headers', () => {
    const location = (path: string, method: string, code: string) => doc.paths[path][method].responses[code].headers?.Location;
    expect(location('/api/v1/batches', 'post', '201')).toMatchObject({ required: true });
    expect(location('/api/v1/batches', 'post', '202')).toMatchObject({ required: true });
    expect(location('/api/v1/batches/{id}/status', 'post', '200')).toMatchObject({ required: true });
    expect(location('/api/v1/batches/{id}/status', 'post', '202')).toMatchObject({ required: true });
    expect(location('/api/v1/tokens', 'post', '201')).toMatchObject({ required: true });
  });

  it('states the constraints the validators apply', () => {
    const param = (path: string, name: string) => (doc.paths[path].get.parameters as Json[]).find((p) => p.name === name)!.schema;
    const body = (path: string, method: string) => doc.paths[path][method].requestBody.content['application/json'].schema;
    expect(body('/api/v1/batches/{id}/status', 'post').properties.deviceIds).toMatchObject({ uniqueItems: true, minItems: 1, maxItems: 10_000 });
    expect(body('/api/v1/devices/{id}/config', 'patch')).toMatchObject({ minProperties: 1, maxProperties: 200 });
    expect(body('/api/v1/batches', 'post').properties.name.description).toMatch(/trimmed/);
    expect(body('/api/v1/tokens', 'post').properties.name.description).toMatch(/trimmed/);
    for (const path of ['/api/v1/devices/{id}/telemetry', '/api/v1/devices/{id}/logs']) {
      expect(param(path, 'from')).toMatchObject({ type: 'string', format: 'date-time' });
      expect(param(path, 'to')).toMatchObject({ type: 'string', format: 'date-time' });
    }
    const bucket = param('/api/v1/devices/{id}/telemetry', 'bucket');
    expect(bucket.anyOf).toContainEqual(expect.objectContaining({ type: 'integer', minimum: 1, maximum: 366 * 86_400 }));
    expect(param('/api/v1/batches', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 1000, default: 100 });
  });

  it('constrains every string a client sends with a pattern or an enum that keeps U+0000 out', () => {
    const loose: string[] = [];
    const walk = (schema: Json | undefined, where: string): void => {
      if (!schema || typeof schema !== 'object') return;
      if (schema.type === 'string' && !schema.enum && !schema.const) {
        const patterns = [schema.pattern, ...((schema.allOf as Json[] | undefined) ?? []).map((a) => a.pattern)].filter(Boolean) as string[];
        // Kept out: the storable-text rule, or an anchored pattern without `.` outside its character classes.
        const keepsNulOut = patterns.some((p) => p === NO_NUL_TEXT.source || (p.startsWith('^') && p.endsWith('$') && !/(^|[^\\])\./.test(p.replace(/\[(?:\\.|[^\]])*\]/g, '[]'))));
        if (!keepsNulOut) loose.push(where);
      }
      for (const [k, v] of Object.entries(schema)) if (v && typeof v === 'object') walk(v as Json, `${where}.${k}`);
    };
    for (const { id, op } of operations()) {
      for (const p of op.parameters as Json[]) walk(p.schema, `${id} ${p.in}:${p.name}`);
      walk(op.requestBody?.content['application/json'].schema, `${id} body`);
    }
    expect(loose).toEqual([]);
  });
});

test('the batch made for these tests is still there', async () => {
  expect((await s.api(`/api/v1/batches/${batchId}`)).status).toBe(200);
});
