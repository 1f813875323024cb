// What a device is flashed with: one row of its batch's devices.csv (files/device-export.ts), or a
// JSON provisioning file. The broker URL comes from the `mqtt_url` column when the export has it,
// else from the command line or the environment. The platform's OTA public key comes with the JSON
// file (`otaPublicKey`) or the command line (`--ota-public-key <file>`): devices.csv has no column for it.
import fs from 'node:fs';
import { z } from 'zod';
import { isDeviceId } from '../domain/ids';
import { DEVICE_CSV_COLUMNS } from '../files/device-export';
import { deviceMqttUsername } from '../domain/broker-identity';
import { csvObjects } from './csv-read';
import { loadPublicKey } from './ota/verify';

/** The platform's embedded broker on this machine (MQTT_PORT's default). */
export const DEFAULT_MQTT_URL = 'mqtt://127.0.0.1:1884';
/** The broker column of devices.csv (older exports lack it: then --broker / MQTT_URL). */
export const MQTT_URL_COLUMN = 'mqtt_url' satisfies (typeof DEVICE_CSV_COLUMNS)[number];

export interface Provisioning {
  deviceId: string;
  /** The broker login's username (devices.csv `mqtt_username`); the Homie ID when absent. */
  mqttUsername: string;
  secret: string;
  mqttUrl: string;
  pairingCode: string | null;
  /** The batch's model text (may name a firmware model, or be free text). */
  model: string | null;
  /** The platform's OTA public key (SPKI PEM, Ed25519), when the file carries it. */
  otaPublicKey?: string;
}

export interface ProvisioningSource {
  /** --broker, then MQTT_URL; used when the file names no broker. */
  broker?: string | null;
  env?: NodeJS.ProcessEnv;
}

type Column = (typeof DEVICE_CSV_COLUMNS)[number];
const col = (name: Column): Column => name; // a typo in a column name fails the typecheck

export function fallbackBrokerUrl(src: ProvisioningSource = {}): string {
  return src.broker || (src.env ?? process.env).MQTT_URL || DEFAULT_MQTT_URL;
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`not a broker URL: "${url}"`);
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol)) throw new Error(`not an MQTT URL: "${url}"`);
  return url;
}

function fromRow(row: Record<string, string>, src: ProvisioningSource): Provisioning {
  const deviceId = row[col('device_id')] ?? '';
  if (!isDeviceId(deviceId)) throw new Error(`devices.csv: "${deviceId}" is not a device ID`);
  const secret = row[col('secret')] ?? '';
  if (!secret) throw new Error(`devices.csv: device ${deviceId} has no secret`);
  return {
    deviceId,
    mqttUsername: row[col('mqtt_username')] || deviceMqttUsername(deviceId),
    secret,
    mqttUrl: checkUrl(row[MQTT_URL_COLUMN] || fallbackBrokerUrl(src)),
    pairingCode: row[col('pairing_code')] || null,
    model: row[col('model')] || null,
  };
}

/** Every device of a devices.csv text (the fleet simulator runs them all). */
export function provisioningRows(csvText: string, src: ProvisioningSource = {}): Provisioning[] {
  const { columns, rows } = csvObjects(csvText);
  for (const required of [col('device_id'), col('secret')]) {
    if (!columns.includes(required)) throw new Error(`devices.csv: no "${required}" column (columns: ${columns.join(', ')})`);
  }
  return rows.map((r) => fromRow(r, src));
}

/** One device: by its ID (any case), or by its 1-based row number among the data rows. */
export function pickDevice(all: Provisioning[], pick: { device?: string | null; row?: number | null }): Provisioning {
  if (pick.device) {
    const found = all.find((p) => p.deviceId === pick.device!.toUpperCase());
    if (!found) throw new Error(`devices.csv: no device ${pick.device}`);
    return found;
  }
  if (pick.row !== undefined && pick.row !== null) {
    if (!Number.isSafeInteger(pick.row) || pick.row < 1 || pick.row > all.length) throw new Error(`devices.csv: row ${pick.row} is not between 1 and ${all.length}`);
    return all[pick.row - 1]!;
  }
  if (all.length === 1) return all[0]!;
  throw new Error('devices.csv holds several devices: say which with --device <id> or --row <n>');
}

const ProvisioningJson = z.object({
  deviceId: z.string().refine(isDeviceId, 'not a device ID'),
  secret: z.string().min(1),
  mqttUrl: z.string().min(1).nullish(),
  mqttUsername: z.string().min(1).nullish(),
  pairingCode: z.string().nullish(),
  model: z.string().nullish(),
  otaPublicKey: z.string().refine(isOtaPublicKey, 'not an Ed25519 public key (SPKI PEM)').nullish(),
});

/** An Ed25519 public key in PEM, as `GET /api/v1/firmware/public-key` serves it. */
export function isOtaPublicKey(pem: string): boolean {
  try {
    loadPublicKey(pem);
    return true;
  } catch {
    return false;
  }
}

export function parseProvisioningJson(text: string, src: ProvisioningSource = {}): Provisioning {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`provisioning file: not JSON (${(err as Error).message})`);
  }
  const r = ProvisioningJson.safeParse(raw);
  if (!r.success) throw new Error(`provisioning file: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return {
    deviceId: r.data.deviceId,
    mqttUsername: r.data.mqttUsername || deviceMqttUsername(r.data.deviceId),
    secret: r.data.secret,
    mqttUrl: checkUrl(r.data.mqttUrl || fallbackBrokerUrl(src)),
    pairingCode: r.data.pairingCode ?? null,
    model: r.data.model ?? null,
    ...(r.data.otaPublicKey ? { otaPublicKey: r.data.otaPublicKey } : {}),
  };
}

/** A JSON file (by extension or by content) or a devices.csv. */
export function readProvisioningFile(file: string): { kind: 'json' | 'csv'; text: string } {
  const text = fs.readFileSync(file, 'utf8');
  const json = file.toLowerCase().endsWith('.json') || text.trimStart().startsWith('{');
  return { kind: json ? 'json' : 'csv', text };
}

export function loadProvisioning(file: string, pick: { device?: string | null; row?: number | null }, src: ProvisioningSource = {}): Provisioning {
  const { kind, text } = readProvisioningFile(file);
  if (kind === 'json') {
    const p = parseProvisioningJson(text, src);
    if (pick.device && pick.device.toUpperCase() !== p.deviceId) throw new Error(`provisioning file is for ${p.deviceId}, not ${pick.device}`);
    return p;
  }
  return pickDevice(provisioningRows(text, src), pick);
}

export function loadProvisioningList(file: string, src: ProvisioningSource = {}): Provisioning[] {
  const { kind, text } = readProvisioningFile(file);
  return kind === 'json' ? [parseProvisioningJson(text, src)] : provisioningRows(text, src);
}
