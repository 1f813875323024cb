// Liveness, readiness (each dependency checked with a deadline) and the OpenAPI document.
import type { ApiDeps } from '../deps';
import { route, type RouteSpec } from '../http/route';
import { openApiDocument } from '../http/openapi';
import { z } from 'zod';

const CHECK_TIMEOUT_MS = 2_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

const readinessSchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() })),
});

export function healthRoutes(d: ApiDeps, allRoutes: () => RouteSpec[]) {
  let openapi: unknown;
  return [
    route({
      method: 'get',
      base: '',
      path: '/healthz',
      tag: 'health',
      summary: 'Liveness: the process answers',
      permission: null,
      responses: { 200: { description: 'alive', schema: z.object({ status: z.literal('ok') }) } },
      handler: async () => ({ status: 'ok' }),
    }),
    route({
      method: 'get',
      base: '',
      path: '/readyz',
      tag: 'health',
      summary: 'Readiness: Postgres, Temporal and MQTT each answer',
      permission: null,
      responses: { 200: { description: 'ready', schema: readinessSchema }, 503: { description: 'a dependency is down', schema: readinessSchema } },
      handler: async ({ res }) => {
        const results = await Promise.all(
          d.readiness.map(async (c) => {
            const started = performance.now();
            try {
              await withTimeout(c.check(), CHECK_TIMEOUT_MS);
              return [c.name, { ok: true, latencyMs: Math.round(performance.now() - started) }] as const;
            } catch (err) {
              return [c.name, { ok: false, latencyMs: Math.round(performance.now() - started), error: (err as Error).message }] as const;
            }
          }),
        );
        const ok = results.every(([, r]) => r.ok);
        res.status(ok ? 200 : 503);
        return { status: ok ? 'ready' : 'unavailable', checks: Object.fromEntries(results) };
      },
    }),
    route({
      method: 'get',
      path: '/openapi.json',
      tag: 'health',
      summary: 'This OpenAPI document',
      permission: null,
      responses: { 200: { description: 'OpenAPI 3.1', schema: z.record(z.string(), z.unknown()) } },
      handler: async () => (openapi ??= openApiDocument(allRoutes(), { title: 'Remote device management API', version: '1' })),
    }),
  ];
}
