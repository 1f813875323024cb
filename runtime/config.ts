// The process configuration: read from the environment once at start-up, validated, frozen.
// Every variable has a default that works on a fresh machine; a wrong value names itself.
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_PAIRING_TIMEOUT_S } from '../domain/pairing';
import { DEFAULT_DOWNLOAD_URL_TTL_S, DEFAULT_FIRMWARE_MAX_BYTES } from '../domain/firmware';

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL with scheme ${protocols.map((p) => p.replace(':', '://')).join(' or ')}`);

const port = z.coerce.number().int().min(1).max(65535);

const schema = z.object({
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  MQTT_URL: url(['mqtt:', 'mqtts:', 'tcp:', 'ws:', 'wss:']).optional(),
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('device-management'),
  TEMPORAL_UI_PORT: port.default(8233),
  ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),
  /** `open`: anyone may create an end-user account (POST /users without a token); `closed`: only admins create users. */
  SIGNUP: z.enum(['open', 'closed']).default('open'),
  /** How long a sign-in session lasts. */
  SESSION_TTL_S: z.coerce.number().int().min(60).max(90 * 86_400).default(12 * 3_600),
  DEVICE_SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  EMBEDDED_POSTGRES_PORT: port.default(5433),
  /** The embedded broker's port (MQTT_URL unset): 1884, so that it never meets a broker the machine runs on 1883. */
  MQTT_PORT: port.default(1884),
  /** Set by `npm start` for its processes: which embedded broker runs (aedes asks Postgres itself: nothing to mirror). */
  EMBEDDED_BROKER: z.enum(['mosquitto', 'aedes']).default('mosquitto'),
  /**
   * How device logins reach an external broker (MQTT_URL set): `http`, the broker asks the API's
   * /broker-auth endpoint (EMQX, VerneMQ, mosquitto-go-auth); `none`, the broker is trusted as
   * private and start-up warns loudly; `dynsec`, the worker manages the broker's Mosquitto
   * dynamic-security plugin with the admin login below (docs/broker.md).
   */
  MQTT_AUTH: z.enum(['http', 'dynsec', 'none']).default('none'),
  /** The dynamic-security plugin's admin login (MQTT_AUTH=dynsec): its username, ... */
  MQTT_DYNSEC_USERNAME: z.string().min(1).default('admin'),
  /** ... and its password (required by MQTT_AUTH=dynsec). */
  MQTT_DYNSEC_PASSWORD: z.string().min(1).optional(),
  /** The secret a broker sends to the HTTP auth endpoint (`Authorization: Bearer <it>`); when set, /broker-auth is served. */
  MQTT_HTTP_AUTH_SECRET: z.string().min(24, 'must be at least 24 characters').optional(),
  TEMPORAL_PORT: port.default(7233),
  PUBLIC_URL: url(['http:', 'https:']).optional(),
  /** The broker address devices are given (devices.csv `mqtt_url`); defaults to the broker's. PUBLIC_MQTT_URL is its old name. */
  MQTT_DEVICE_URL: url(['mqtt:', 'mqtts:', 'tcp:', 'ws:', 'wss:']).optional(),
  /** MQTT 5 shared-subscription group: bridges in one group split the device stream. */
  BRIDGE_SHARE_GROUP: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only').default('rdm-bridge'),
  /** Telemetry rows written per database round trip, and the longest a row waits for one. */
  BRIDGE_BATCH_ROWS: z.coerce.number().int().min(1).max(100_000).default(5_000),
  BRIDGE_FLUSH_MS: z.coerce.number().int().min(1).max(60_000).default(50),
  /** Messages the bridge holds before it stops reading from the broker (backpressure). */
  BRIDGE_MAX_BUFFERED: z.coerce.number().int().min(100).max(10_000_000).default(50_000),
  /** Nodes one device may have, and properties per node: topics beyond them are dropped (bridge/property-caps.ts). */
  BRIDGE_MAX_NODES_PER_DEVICE: z.coerce.number().int().min(1).max(10_000).default(64),
  BRIDGE_MAX_PROPERTIES_PER_NODE: z.coerce.number().int().min(1).max(10_000).default(128),
  /** Device and node attributes (`$fw/name`, `node/$name`, ...) one device may have stored: new ones beyond it are dropped. */
  BRIDGE_MAX_ATTRIBUTES_PER_DEVICE: z.coerce.number().int().min(1).max(10_000).default(256),
  /** Names this bridge's MQTT session (client ID): stable across restarts, distinct per instance; default the host name. */
  BRIDGE_ID: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, - and _ only (at most 40)').optional(),
  /** How long the broker keeps a stopped bridge's session (and queues its share of messages). */
  BRIDGE_SESSION_EXPIRY_S: z.coerce.number().int().min(0).max(7 * 86_400).default(600),
  BRIDGE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  LOG_RETENTION_DAYS: z.coerce.number().min(0.001).max(3650).default(14),
  LOG_RETENTION_PER_DEVICE: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  /** How long a set or a diagnostic command waits for the device's answer before 504. */
  DEVICE_REPLY_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(5_000),
  /** How long a device has to confirm a pairing (design/contract.md). Read by the API, which starts each attempt with it. */
  PAIRING_TIMEOUT_S: z.coerce.number().int().min(5).max(3_600).default(DEFAULT_PAIRING_TIMEOUT_S),
  /** On SIGTERM the worker takes no new tasks and gives in-flight activities this long to finish. */
  WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  /** The API server's limits (api/http/server.ts, docs/api.md "Limits and timeouts"). */
  HTTP_HEADERS_TIMEOUT_S: z.coerce.number().min(1).max(600).default(20),
  HTTP_REQUEST_TIMEOUT_S: z.coerce.number().min(1).max(3_600).default(60),
  HTTP_KEEP_ALIVE_TIMEOUT_S: z.coerce.number().min(1).max(3_600).default(65),
  /** Downloads (devices.csv, bundle.zip) streamed at once, and how long one may wait on a client that stopped reading. */
  EXPORT_CONCURRENCY: z.coerce.number().int().min(1).max(1_000).default(4),
  EXPORT_STALL_TIMEOUT_S: z.coerce.number().min(1).max(3_600).default(30),
  /** The largest firmware image an upload may carry (bytes). An upload must also fit in HTTP_REQUEST_TIMEOUT_S. */
  FIRMWARE_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 ** 3).default(DEFAULT_FIRMWARE_MAX_BYTES),
  /** The Ed25519 key images are signed with (PKCS#8 PEM); unset: made once in DATA_DIR/firmware-signing-key.pem. */
  FIRMWARE_SIGNING_KEY: z.string().min(1).optional(),
  /** How long a device's firmware download link works. */
  FIRMWARE_URL_TTL_S: z.coerce.number().int().min(60).max(7 * 86_400).default(DEFAULT_DOWNLOAD_URL_TTL_S),
}).refine((c) => c.MQTT_AUTH !== 'http' || !c.MQTT_URL || c.MQTT_HTTP_AUTH_SECRET, {
  path: ['MQTT_HTTP_AUTH_SECRET'],
  message: 'MQTT_AUTH=http needs it: the secret the broker sends to /broker-auth',
}).refine((c) => c.MQTT_AUTH !== 'dynsec' || !c.MQTT_URL || c.MQTT_DYNSEC_PASSWORD, {
  path: ['MQTT_DYNSEC_PASSWORD'],
  message: 'MQTT_AUTH=dynsec needs it: the password of the dynamic-security plugin\'s admin (MQTT_DYNSEC_USERNAME)',
}).refine((c) => c.HTTP_HEADERS_TIMEOUT_S <= c.HTTP_REQUEST_TIMEOUT_S, {
  path: ['HTTP_HEADERS_TIMEOUT_S'],
  message: 'must not exceed HTTP_REQUEST_TIMEOUT_S (the headers are part of the request)',
});

export type Env = z.infer<typeof schema>;
export interface Config extends Env {
  DATA_DIR: string; // absolute
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses the environment. Empty strings count as unset, so `FOO= npm start` means "default". */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  // Old names, kept as aliases.
  if (input.PUBLIC_MQTT_URL && !input.MQTT_DEVICE_URL) input.MQTT_DEVICE_URL = input.PUBLIC_MQTT_URL;
  delete input.PUBLIC_MQTT_URL;
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  return Object.freeze({ ...parsed.data, DATA_DIR: path.resolve(parsed.data.DATA_DIR) });
}

/** For process entry points: print the problem and exit 78 (EX_CONFIG) instead of a stack trace. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}
