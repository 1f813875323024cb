// The device's own web page, for "reserve configuration" when the cloud is unreachable: an
// installer on the local network (or on the device itself: bound to 127.0.0.1 unless told
// otherwise) reads the values and changes settings and settable properties. Changes made here
// are kept and reported on `$rdm/config` once the broker is back (firmware/README.md).
//
//   GET  /                              HTML page (every device-provided text escaped)
//   GET  /api/state                     the device snapshot as JSON
//   POST /api/settings                  JSON object: merge patch (RFC 7386) into the settings;
//                                       form field `settings` (JSON text): replaces them
//   POST /api/sensors/<node>/<property> JSON {"value": ...} or form field `value`: sets a
//                                       settable property, validated like an MQTT `/set`
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Settings } from '../domain/device-messages';
import type { Device, DeviceSnapshot } from './device';

export interface LocalAdminOptions {
  device: Device;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: exposing the page on the network is a deliberate choice. */
  host?: string;
  /** Basic auth; the CLI passes the device ID and secret. */
  auth?: { username: string; password: string } | null;
  maxBodyBytes?: number;
}

export interface LocalAdmin {
  url: string;
  port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `body over ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

type Body = { kind: 'json'; value: unknown } | { kind: 'form'; value: URLSearchParams };

async function parseBody(req: IncomingMessage, limit: number): Promise<Body> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const text = await readBody(req, limit);
  if (type === 'application/json') {
    try {
      return { kind: 'json', value: JSON.parse(text) };
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
  }
  if (type === 'application/x-www-form-urlencoded') return { kind: 'form', value: new URLSearchParams(text) };
  throw new HttpError(415, 'send application/json or application/x-www-form-urlencoded');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** After a browser's form post, back to the page (POST/redirect/GET). */
function seeOther(res: ServerResponse): void {
  res.writeHead(303, { location: '/', 'cache-control': 'no-store' });
  res.end();
}

function authorized(req: IncomingMessage, auth: { username: string; password: string }): boolean {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(Buffer.from(m[1]!, 'base64').toString('utf8'));
  const expected = Buffer.from(`${auth.username}:${auth.password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A page in a browser must not be made to post here by another site (cross-site form posts). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // curl, scripts, same-origin GETs turned POST by old browsers
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function valueInput(v: DeviceSnapshot['values'][number]): string {
  const name = `value`;
  if (v.datatype === 'enum' || v.datatype === 'boolean') {
    const options = v.datatype === 'boolean' ? ['true', 'false'] : (v.format ?? '').split(',');
    return `<select name="${name}">${options.map((o) => `<option${o === v.payload ? ' selected' : ''}>${escapeHtml(o)}</option>`).join('')}</select>`;
  }
  return `<input name="${name}" value="${escapeHtml(v.payload)}" size="10">`;
}

export function renderPage(s: DeviceSnapshot): string {
  const rows = s.values
    .map((v) => {
      const form = v.settable
        ? `<form method="post" action="/api/sensors/${encodeURIComponent(v.node)}/${encodeURIComponent(v.property)}">${valueInput(v)} <button>Set</button></form>`
        : '';
      return `<tr><td>${escapeHtml(v.node)}/${escapeHtml(v.property)}</td><td>${escapeHtml(v.name)}</td><td class="v">${escapeHtml(v.payload)}</td><td>${escapeHtml(v.unit ?? '')}</td><td>${form}</td></tr>`;
    })
    .join('\n');
  const c = s.connection;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(s.name)}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .6em;text-align:left}.v{font-family:monospace}textarea{width:40em;height:10em}</style></head>
<body>
<h1>${escapeHtml(s.name)}</h1>
<p>Device <b id="device-id">${escapeHtml(s.deviceId)}</b> · model ${escapeHtml(s.model)} · Homie ${escapeHtml(s.homie)} · firmware ${escapeHtml(s.firmware.version)}</p>
<p>State <b id="state">${escapeHtml(s.state)}</b>${s.alert ? ` — alert: ${escapeHtml(s.alert)}` : ''}</p>
<p>Cloud connection <b id="connection">${escapeHtml(c.status)}</b> to ${escapeHtml(c.mqttUrl)} (connections ${c.connects}, reconnects ${c.reconnects}${c.lastError ? `, last error: ${escapeHtml(c.lastError)}` : ''})</p>
<h2>Pairing</h2>
<p>Owner <b id="owner">${escapeHtml(s.pairing.owner ?? 'none')}</b></p>
${s.pairing.pending
    ? `<p id="pairing-request">A user asks to pair (attempt ${escapeHtml(s.pairing.pending.pairingId)}, until ${escapeHtml(s.pairing.pending.expiresAt)}).</p>
<form method="post" action="/api/pairing/accept"><button id="pair-button">Pair (the device's button)</button></form>
<form method="post" action="/api/pairing/refuse"><button>Refuse</button></form>`
    : '<p>No pairing request.</p>'}
<h2>Values</h2>
<table><tr><th>Property</th><th>Name</th><th>Value</th><th>Unit</th><th></th></tr>
${rows}
</table>
<h2>Settings</h2>
<p>Configuration version ${escapeHtml(s.config.version ?? 'none')} (local changes keep it and are reported to the cloud when it is reachable).</p>
<form method="post" action="/api/settings"><textarea name="settings">${escapeHtml(JSON.stringify(s.config.settings, null, 2))}</textarea><br><button>Save settings</button></form>
<p>In effect: <code>${escapeHtml(JSON.stringify(s.effectiveSettings))}</code></p>
</body></html>
`;
}

export async function startLocalAdmin(o: LocalAdminOptions): Promise<LocalAdmin> {
  const limit = o.maxBodyBytes ?? 64 * 1024;
  const device = o.device;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (o.auth && !authorized(req, o.auth)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="device", charset="UTF-8"', 'content-type': 'text/plain' });
      res.end('authentication required');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://device.local');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST' && !sameOrigin(req)) throw new HttpError(403, 'cross-origin request refused');

    if (path === '/') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'GET only');
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : renderPage(device.snapshot()));
      return;
    }
    if (path === '/api/state') {
      if (method !== 'GET') throw new HttpError(405, 'GET only');
      sendJson(res, 200, device.snapshot());
      return;
    }
    if (path === '/api/settings') {
      if (method !== 'POST') throw new HttpError(405, 'POST only');
      const body = await parseBody(req, limit);
      let settings: unknown;
      let mode: 'merge' | 'replace';
      if (body.kind === 'json') {
        settings = body.value;
        mode = 'merge';
      } else {
        const text = body.value.get('settings');
        if (text === null) throw new HttpError(400, 'form field "settings" is missing');
        try {
          settings = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'form field "settings" is not valid JSON');
        }
        mode = 'replace';
      }
      if (!isObject(settings)) throw new HttpError(400, 'settings must be a JSON object');
      const r = device.applyLocalSettings(settings as Settings, mode);
      if (!r.ok) throw new HttpError(400, 'invalid settings', r.errors);
      if (body.kind === 'form') seeOther(res);
      else sendJson(res, 200, { version: device.snapshot().config.version, settings: r.settings });
      return;
    }
    const pairing = /^\/api\/pairing\/(accept|refuse)$/.exec(path);
    if (pairing) {
      // The button, pressed from the page (or refused): answers the pending request.
      if (method !== 'POST') throw new HttpError(405, 'POST only');
      const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      req.resume();
      const done = pairing[1] === 'accept' ? device.pressButton() : device.refusePairing();
      if (!done) throw new HttpError(409, 'no pairing request is waiting');
      if (form) seeOther(res);
      else sendJson(res, 200, { answered: pairing[1] });
      return;
    }
    const m = /^\/api\/sensors\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) {
      if (method !== 'POST') throw new HttpError(405, 'POST only');
      let node: string;
      let property: string;
      try {
        node = decodeURIComponent(m[1]!);
        property = decodeURIComponent(m[2]!);
      } catch {
        throw new HttpError(400, 'malformed path');
      }
      const body = await parseBody(req, limit);
      let value: unknown;
      if (body.kind === 'json') {
        if (!isObject(body.value) || !('value' in body.value)) throw new HttpError(400, 'expected {"value": ...}');
        value = body.value.value;
      } else {
        const v = body.value.get('value');
        if (v === null) throw new HttpError(400, 'form field "value" is missing');
        value = v;
      }
      if (device.sim.indexOf(node, property) < 0) throw new HttpError(404, `no property ${node}/${property}`);
      const r = device.setLocal(node, property, value);
      if (!r.ok) throw new HttpError(400, r.reason);
      if (body.kind === 'form') seeOther(res);
      else sendJson(res, 200, { node, property, value: r.value, payload: r.payload });
      return;
    }
    throw new HttpError(404, 'not found');
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal error');
      if (!(err instanceof HttpError)) device.log('error', 'local admin page failed', { error: (err as Error)?.message });
      if (res.headersSent) return void res.end();
      sendJson(res, e.status, { error: e.message, ...(e.details !== undefined ? { details: e.details } : {}) });
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
