// What the API's routes need, built once by the process (api/main.ts) or a test.
import type { Client } from '@temporalio/client';
import type { CredentialDeriver } from '../domain/credentials';
import type { Db } from '../db/knex';
import type { Logger } from '../runtime/logger';
import type { DeviceRequests } from './device-requests';
import type { FirmwareDeps } from './routes/firmware';

export interface HealthCheck {
  name: string;
  check(): Promise<void>;
}

export interface ApiDeps {
  db: Db;
  temporal: Client;
  taskQueue: string;
  credentials: CredentialDeriver;
  log: Logger;
  adminToken?: string;
  /** Open sign-up of end users (POST /users without a token); default open. */
  signup?: 'open' | 'closed';
  /** How long a sign-in session lasts (SESSION_TTL_S). */
  sessionTtlS?: number;
  /** Readiness: each dependency the API cannot work without (Postgres, Temporal, MQTT). */
  readiness: HealthCheck[];
  /** How long a bulk status change may take before the API answers 202 instead of the outcome. */
  bulkWaitMs?: number;
  /** How long batch creation waits for a worker to write the batch before answering 202. */
  acceptWaitMs?: number;
  /** Talks to devices over MQTT (sets, diagnostic commands, desired configuration). */
  devices: DeviceRequests;
  /** How long a set or a command waits for the device before 504 (DEVICE_REPLY_TIMEOUT_MS). */
  replyTimeoutMs?: number;
  /** How long a device has to confirm a pairing (PAIRING_TIMEOUT_S). */
  pairingTimeoutS?: number;
  /** The broker address written into devices.csv for the devices (PUBLIC_MQTT_URL, else MQTT_URL). */
  publicMqttUrl?: string;
  /** Firmware storage and signing (api/routes/firmware.ts). */
  firmware: FirmwareDeps;
}
