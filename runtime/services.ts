// Where the external services are: the configured URLs, or the embedded defaults that
// `npm start` brings up (so `npm run api` / `npm run worker` alone find them too).
import path from 'node:path';
import type { Config } from './config';

export interface ServiceAddresses {
  databaseUrl: string;
  mqttUrl: string;
  temporalAddress: string;
}

export const EMBEDDED_PG = { user: 'postgres', password: 'postgres', database: 'rdm' } as const;

export function embeddedDatabaseUrl(port: number): string {
  return `postgres://${EMBEDDED_PG.user}:${EMBEDDED_PG.password}@127.0.0.1:${port}/${EMBEDDED_PG.database}`;
}

export function serviceAddresses(cfg: Config): ServiceAddresses {
  return {
    databaseUrl: cfg.DATABASE_URL ?? embeddedDatabaseUrl(cfg.EMBEDDED_POSTGRES_PORT),
    mqttUrl: cfg.MQTT_URL ?? `mqtt://127.0.0.1:${cfg.MQTT_PORT}`,
    temporalAddress: cfg.TEMPORAL_ADDRESS ?? `127.0.0.1:${cfg.TEMPORAL_PORT}`,
  };
}

/** For logs: a URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** The embedded Mosquitto's files (password, ACL, pid): one place, known to every process. */
export function embeddedBrokerDir(cfg: Pick<Config, 'DATA_DIR'>): string {
  return path.join(cfg.DATA_DIR, 'mosquitto');
}
