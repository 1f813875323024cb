// Builds the Express app: routes declared in api/routes, validated and documented by api/http.
import express from 'express';
import type { ApiDeps } from './deps';
import { authenticator } from './http/auth';
import { errorHandler, notFoundHandler } from './http/errors';
import { API_BASE, mount, type RouteSpec } from './http/route';
import { batchRoutes } from './routes/batches';
import { deviceRoutes } from './routes/devices';
import { healthRoutes } from './routes/health';
import { tokenRoutes } from './routes/tokens';
import { alertRoutes } from './routes/alerts';
import { deviceConfigRoutes } from './routes/device-config';
import { deviceControlRoutes } from './routes/device-control';
import { diagnosticsRoutes } from './routes/diagnostics';

export function buildApp(d: ApiDeps): express.Express {
  const routes: RouteSpec[] = [];
  routes.push(...healthRoutes(d, () => routes), ...batchRoutes(d), ...deviceRoutes(d), ...tokenRoutes(d));
  routes.push(...deviceControlRoutes(d), ...deviceConfigRoutes(d), ...diagnosticsRoutes(d), ...alertRoutes(d));

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple'); // no nested objects from ?a[b]=c
  app.use(express.json({ limit: '1mb' }));
  const authenticate = authenticator(d.db, d.adminToken);
  const root = express.Router();
  const api = express.Router();
  mount(root, routes.filter((r) => r.base === ''), authenticate);
  mount(api, routes.filter((r) => r.base !== ''), authenticate);
  app.use(root);
  app.use(API_BASE, api);
  app.use(notFoundHandler);
  app.use(errorHandler(d.log));
  return app;
}
