// The OpenAPI 3.1 document, written from the route declarations' zod schemas.
import { z } from 'zod';
import { API_BASE, type RouteSpec } from './route';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output') {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    schema: prop,
  }));
}

export function openApiDocument(routes: RouteSpec[], info: { title: string; version: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = `${r.base ?? API_BASE}${r.path}`.replace(/:(\w+)/g, '{$1}');
    const responses = Object.fromEntries(
      Object.entries(r.responses).map(([status, spec]) => [
        status,
        {
          description: spec.description,
          ...(spec.schema
            ? { content: { 'application/json': { schema: jsonSchema(spec.schema, 'output') } } }
            : spec.contentType
              ? { content: { [spec.contentType]: { schema: { type: 'string', format: 'binary' } } } }
              : {}),
        },
      ]),
    );
    if (r.permission) {
      responses['401'] ??= { description: 'missing, unknown or revoked bearer token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
      responses['403'] ??= { description: `the token lacks the '${r.permission}' permission`, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.permission ? { security: [{ bearer: [] }], 'x-permission': r.permission } : { security: [] }),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
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
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string' },
                message: { type: 'string' },
                details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
              },
            },
          },
        },
      },
    },
    paths,
  };
}
