// The HTTP authentication and ACL endpoint for brokers that ask the platform (MQTT_AUTH=http), so
// that the product scales past one Mosquitto: EMQX 5's HTTP authenticator and authorizer, and
// mosquitto-go-auth's http backend (which VerneMQ's webhooks resemble). Decisions come from the
// one definition (domain/broker-identity.ts) and Postgres, through the cached authenticator.
//
// Only the broker may call it: every request carries the shared secret MQTT_HTTP_AUTH_SECRET
// (`Authorization: Bearer <secret>` or `X-Broker-Secret: <secret>`); without it, 401 before the
// body is read. Nothing a device sends (its password) is logged.
//
//   POST /broker-auth/emqx/authn  {username, password, clientid}  -> 200 {"result":"allow"|"deny","is_superuser":false}
//   POST /broker-auth/emqx/authz  {username, topic, action}       -> 200 {"result":"allow"|"deny"}
//   POST /broker-auth/user        {username, password, clientid}  -> 200 allowed | 403 denied   (go-auth)
//   POST /broker-auth/superuser   {username}                      -> 403 (there are no superusers)
//   POST /broker-auth/acl         {username, topic, clientid, acc} -> 200 | 403 (acc 1 read, 2 write, 3 both, 4 subscribe)
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { mayRead } from '../domain/broker-identity';
import { safeEqual } from '../domain/credentials';
import type { DeviceAuthenticator } from './authenticator';

export interface BrokerAuthOptions {
  authenticator: DeviceAuthenticator;
  secret: string;
}

const str = z.string().max(1024);
const authnBody = z.object({ username: str.optional().default(''), password: str.optional().default(''), clientid: str.optional() }).passthrough();
const emqxAuthzBody = z.object({ username: str.optional().default(''), topic: str, action: z.enum(['publish', 'subscribe', 'all']) }).passthrough();
const goAuthAclBody = z.object({ username: str.optional().default(''), topic: str, acc: z.coerce.number().int().min(1).max(4), clientid: str.optional() }).passthrough();

function presentedSecret(req: Request): string | null {
  const h = req.headers.authorization;
  const bearer = h ? /^Bearer\s+(\S+)$/i.exec(h)?.[1] : undefined;
  const header = req.headers['x-broker-secret'];
  return bearer ?? (typeof header === 'string' ? header : null);
}

export function brokerAuthRouter(o: BrokerAuthOptions): Router {
  const router = express.Router();
  router.use((req, res, next) => {
    const given = presentedSecret(req);
    if (!given || !safeEqual(given, o.secret)) {
      res.status(401).setHeader('Connection', 'close');
      res.json({ error: { code: 'unauthorized', message: 'the broker secret is missing or wrong' } });
      return;
    }
    next();
  });
  router.use(express.json({ limit: '16kb' }), express.urlencoded({ extended: false, limit: '16kb' }));

  const parsed = <T>(schema: z.ZodType<T>, req: Request, res: Response): T | null => {
    const r = schema.safeParse(req.body ?? {});
    if (r.success) return r.data;
    res.status(400).json({ error: { code: 'invalid_request', message: r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') } });
    return null;
  };
  const a = o.authenticator;
  const mayAll = (u: string, t: string) => a.mayPublish(u, t) && a.maySubscribe(u, t);

  router.post('/emqx/authn', async (req, res) => {
    const b = parsed(authnBody, req, res);
    if (b) res.json({ result: (await a.authenticate(b.username, b.password)) ? 'allow' : 'deny', is_superuser: false });
  });
  router.post('/emqx/authz', (req, res) => {
    const b = parsed(emqxAuthzBody, req, res);
    if (!b) return;
    const ok = b.action === 'publish' ? a.mayPublish(b.username, b.topic) : b.action === 'subscribe' ? a.maySubscribe(b.username, b.topic) : mayAll(b.username, b.topic);
    res.json({ result: ok ? 'allow' : 'deny' });
  });
  router.post('/user', async (req, res) => {
    const b = parsed(authnBody, req, res);
    if (b) res.status((await a.authenticate(b.username, b.password)) ? 200 : 403).end();
  });
  router.post('/superuser', (_req, res) => void res.status(403).end());
  router.post('/acl', (req, res) => {
    const b = parsed(goAuthAclBody, req, res);
    if (!b) return;
    const u = b.username;
    const ok = b.acc === 1 ? mayRead(u, b.topic) : b.acc === 2 ? a.mayPublish(u, b.topic) : b.acc === 3 ? mayRead(u, b.topic) && a.mayPublish(u, b.topic) : a.maySubscribe(u, b.topic);
    res.status(ok ? 200 : 403).end();
  });
  router.use((_req, res) => void res.status(404).json({ error: { code: 'not_found', message: 'no such broker auth endpoint' } }));
  return router;
}
