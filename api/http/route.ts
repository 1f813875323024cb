// A route is declared once, as data: its path, who may call it, zod schemas and handler. The same
// declaration mounts the Express handler (with validation) and writes the OpenAPI document,
// so the document can never drift from what the API accepts.
//
// Who may call it: `permission` (required, typed: a route without one does not compile) says
// what the caller must hold somewhere, checked before the body is read; the handler's lookup of
// the resource (requireDevice, requireBatch, ...) then asks the policy (api/http/policy.ts)
// whether they hold it on that resource. Both answers come from the one policy function.
import type { Request, RequestHandler, Response, Router } from 'express';
import { z, ZodError } from 'zod';
import { authorize, type Authenticate } from './auth';
import type { Permission, Principal } from './policy';
import { zodToValidationError } from './errors';

/** Where the versioned API lives; health checks sit at the root. */
export const API_BASE = '/api/v1';
/** Largest JSON body express.json accepts (larger: 413). */
export const JSON_BODY_LIMIT = '1mb';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Non-JSON responses (CSV, zip, PNG, SVG). */
  contentType?: string;
  /** Headers this response always carries: name → what it says. */
  headers?: Record<string, string>;
}

export interface Ctx<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  /** null only on public routes (and for an anonymous caller of a route open to them: see `caller`). */
  principal: Principal;
  /** The caller and the route's permission: what a resource lookup checks against the policy. */
  access: Access;
  /** The caller, or null: for routes that take anonymous callers too (`anonymous`). */
  caller: Principal | null;
}

export interface Access {
  principal: Principal;
  permission: Permission;
}

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: Method;
  /** Express syntax (`/batches/:id`); turned into `{id}` for OpenAPI. */
  path: string;
  /** Mount point; default API_BASE. */
  base?: string;
  /** OpenAPI operationId; by default derived from the method and path. */
  operationId?: string;
  summary: string;
  tag: string;
  /** What the caller must hold (api/http/policy.ts); null: a public route (health, the OpenAPI document). */
  permission: Permission | null;
  /** While this answers true, a caller without an Authorization header is let in too (open sign-up). */
  anonymous?: () => boolean;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** Request headers the route reads (lowercase names); checked, documented, read from `req`. */
  headers?: z.ZodType;
  body?: z.ZodType<B>;
  /** The status of a returned value (default 200). */
  status?: number;
  responses: Record<number, ResponseSpec>;
  /** Returns the JSON body (or a Reply), or undefined when it wrote the response itself (streams). */
  handler: (ctx: Ctx<P, Q, B>) => Promise<unknown>;
}

/** A handler's answer with a status other than the route's usual one (e.g. 202 instead of 201). */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

export function route<P, Q, B>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  try {
    return schema.parse(value);
  } catch (err) {
    if (err instanceof ZodError) throw zodToValidationError(err, where);
    throw err;
  }
}

export function mount(router: Router, routes: RouteSpec[], authenticate: Authenticate, parseBody: RequestHandler): void {
  for (const r of routes) {
    // Who is calling is settled first: a body is read only for a caller allowed to send it.
    router[r.method](r.path, authorize(authenticate, r.permission, r.anonymous), ...(r.body ? [parseBody] : []), async (req: Request, res: Response) => {
      const principal = res.locals.principal as Principal;
      const access: Access = { principal, permission: r.permission! };
      const params = parse(r.params, req.params, 'params');
      const query = parse(r.query, req.query, 'query');
      parse(r.headers, req.headers, 'headers');
      if (r.body && req.body === undefined) throw zodToValidationError(new ZodError([{ code: 'custom', path: [], message: 'a JSON body is required', input: undefined }]), 'body');
      const body = parse(r.body, req.body, 'body');
      const result = await r.handler({ req, res, params, query, body, principal, access, caller: (res.locals.principal as Principal | null) ?? null });
      if (result instanceof Reply) res.status(result.status).json(result.body);
      else if (result !== undefined && !res.headersSent) res.status(r.status ?? 200).json(result);
      else if (!res.headersSent && !res.writableEnded) res.status(r.status ?? 204).end();
    });
  }
}
