// Builds the Express app: routes declared in api/routes, validated and documented by api/http.
import express from 'express';
import type { ApiDeps } from './deps';
import { authenticator, type Authenticate, type AuthOptions } from './http/auth';
import { DEFAULT_EXPORT_LIMITS, ExportGate, type ExportLimits } from './exports';
import { errorHandler, notFoundHandler } from './http/errors';
import { API_BASE, JSON_BODY_LIMIT, mount, type RouteSpec } from './http/route';
import { batchRoutes } from './routes/batches';
import { deviceRoutes } from './routes/devices';
import { deviceAccessRoutes } from './routes/device-access';
import { brokerAuthRouter, type BrokerAuthOptions } from '../broker/http-auth';
import { healthRoutes } from './routes/health';
import { tokenRoutes } from './routes/tokens';
import { userRoutes } from './routes/users';
import { companyRoutes } from './routes/companies';
import { auditRoutes } from './routes/audit';
import { pairingRoutes } from './routes/pairings';
import { shareRoutes } from './routes/shares';
import { propertyAccessRoutes } from './routes/property-access';
import { SIGN_UP_RULES, SignInLimiter } from './sign-in-limiter';
import { PasswordGate } from './password-gate';
import { alertRoutes } from './routes/alerts';
import { deviceConfigRoutes } from './routes/device-config';
import { deviceControlRoutes } from './routes/device-control';
import { diagnosticsRoutes } from './routes/diagnostics';
import { firmwareRoutes } from './routes/firmware';
import { deviceUpdateRoutes } from './routes/device-updates';

export interface AppLimits {
  exports?: ExportLimits;
  auth?: AuthOptions;
  /** Sign-in attempts and anonymous sign-ups (api/sign-in-limiter.ts); one each per app by default. */
  signIn?: SignInLimiter;
  signUp?: SignInLimiter;
  /** Where password hashes run (api/password-gate.ts); one per app by default. */
  passwords?: PasswordGate;
  /** The brokers' auth endpoint (MQTT_AUTH=http), under /broker-auth; absent: not served. */
  brokerAuth?: BrokerAuthOptions;
}

export function buildApp(d: ApiDeps, limits: AppLimits = {}): express.Express {
  const downloads = new ExportGate(limits.exports ?? DEFAULT_EXPORT_LIMITS, d.log);
  const authenticate = authenticator(d.db, d.adminToken, limits.auth);
  const routes = apiRoutes(d, downloads, authenticate, {
    signIn: limits.signIn ?? new SignInLimiter(),
    signUp: limits.signUp ?? new SignInLimiter(SIGN_UP_RULES),
    passwords: limits.passwords ?? new PasswordGate(),
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple'); // no nested objects from ?a[b]=c
  // Bodies are parsed per route, after authentication (api/http/route.ts mount).
  const parseBody = express.json({ limit: JSON_BODY_LIMIT });
  const root = express.Router();
  const api = express.Router();
  mount(root, routes.filter((r) => r.base === ''), authenticate, parseBody);
  mount(api, routes.filter((r) => r.base !== ''), authenticate, parseBody);
  // A broker's protocol, not the REST API: its own shared secret, outside the route table.
  if (limits.brokerAuth) app.use('/broker-auth', brokerAuthRouter(limits.brokerAuth));
  app.use(root);
  app.use(API_BASE, api);
  app.use(notFoundHandler);
  app.use(errorHandler(d.log));
  return app;
}

/** Every route of the API: the table the app, the OpenAPI document and the tenancy test are built from. */
export function apiRoutes(d: ApiDeps, downloads: ExportGate, authenticate: Authenticate, limiters: { signIn: SignInLimiter; signUp: SignInLimiter; passwords: PasswordGate }): RouteSpec[] {
  const routes: RouteSpec[] = [];
  routes.push(...healthRoutes(d, () => routes), ...batchRoutes(d, downloads), ...deviceRoutes(d), ...deviceAccessRoutes(d), ...tokenRoutes(d, authenticate));
  routes.push(...deviceControlRoutes(d), ...deviceConfigRoutes(d), ...diagnosticsRoutes(d), ...alertRoutes(d));
  routes.push(...userRoutes(d, limiters, authenticate, limiters.passwords), ...companyRoutes(d), ...auditRoutes(d), ...pairingRoutes(d));
  routes.push(...shareRoutes(d), ...propertyAccessRoutes(d), ...firmwareRoutes(d, d.firmware), ...deviceUpdateRoutes(d));
  return routes;
}
