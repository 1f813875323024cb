// The OpenAPI 3.1 document, written from the route declarations' zod schemas, with the responses
// every route can give (400, 413, 401/403, 500) added from what the route declares.
import { z } from 'zod';
import { documentedSchema, errorSchema } from '../schemas';
import { API_BASE, JSON_BODY_LIMIT, type RouteSpec } from './route';

const ERROR_REF = { $ref: '#/components/schemas/Error' };

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  if (schema === errorSchema) return ERROR_REF;
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      const json = documentedSchema(ctx.zodSchema as unknown as z.ZodType);
      if (!json) return;
      const target = ctx.jsonSchema as Record<string, unknown>;
      for (const k of Object.keys(target)) delete target[k];
      Object.assign(target, json);
    },
  }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query' | 'header') {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    schema: prop,
  }));
}

/** `get /batches/:id/devices.csv` → `getBatchesByIdDevicesCsv`: unique, since method and path are. */
export function operationIdOf(r: Pick<RouteSpec, 'method' | 'path' | 'operationId'>): string {
  if (r.operationId) return r.operationId;
  const words = r.path
    .split(/[/.-]/)
    .filter(Boolean)
    .map((seg) => (seg.startsWith(':') ? `By${seg[1]!.toUpperCase()}${seg.slice(2)}` : seg[0]!.toUpperCase() + seg.slice(1)));
  return r.method + words.join('');
}

const errorReply = (description: string) => ({ description, content: { 'application/json': { schema: ERROR_REF } } });

export function openApiDocument(routes: RouteSpec[], info: { title: string; version: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = `${r.base ?? API_BASE}${r.path}`.replace(/:(\w+)/g, '{$1}');
    const responses: Record<string, unknown> = Object.fromEntries(
      Object.entries(r.responses).map(([status, spec]) => [
        status,
        {
          description: spec.description,
          ...(spec.headers
            ? { headers: Object.fromEntries(Object.entries(spec.headers).map(([h, description]) => [h, { description, required: true, schema: { type: 'string' } }])) }
            : {}),
          ...(spec.schema
            ? { content: { [spec.contentType ?? 'application/json']: { schema: jsonSchema(spec.schema, 'output') } } }
            : spec.contentType
              ? { content: { [spec.contentType]: { schema: { type: 'string', format: 'binary' } } } }
              : {}),
        },
      ]),
    );
    // What the shared machinery answers, whatever the handler does (api/http/route.ts, errors.ts).
    if (r.params || r.query || r.headers || r.body) responses['400'] ??= errorReply('invalid input: `details` names each field at fault');
    if (r.body) responses['413'] ??= errorReply(`the body is larger than ${JSON_BODY_LIMIT}`);
    if (r.permission) {
      responses['401'] ??= errorReply('missing, unknown, revoked or expired bearer token or session');
      responses['403'] ??= errorReply(`the caller lacks the '${r.permission}' permission (anywhere, or on this resource)`);
    }
    responses['500'] ??= errorReply('internal error: the message carries an id to find it in the logs');
    responses['503'] ??= errorReply('a service behind the API (Temporal, the MQTT broker) is unreachable: retry later');
    (paths[path] ??= {})[r.method] = {
      operationId: operationIdOf(r),
      summary: r.summary,
      tags: [r.tag],
      ...(r.permission ? { security: r.anonymous ? [{ bearer: [] }, {}] : [{ bearer: [] }], 'x-permission': r.permission } : { security: [] }),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query'), ...parameters(r.headers, 'header')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: (({ $schema: _drop, ...rest }) => rest)(z.toJSONSchema(errorSchema, { io: 'output' }) as Record<string, unknown>) },
    },
    paths,
  };
}
