// The activity factory: the worker builds every activity once with its dependencies
// (Postgres, the Temporal client, the credential deriver, the MQTT publisher); workflows import only the type.
import type { Client } from '@temporalio/client';
import type { CredentialStore } from '../broker/credential-store';
import type { CredentialDeriver } from '../domain/credentials';
import type { Db } from '../db/knex';
import { brokerCredentialActivities } from './broker-credentials';
import type { DevicePublisher } from '../runtime/device-publisher';
import { bulkStatusActivities } from './bulk-status';
import { deviceStatusActivities } from './device-status';
import { classifyFailures } from './failures';
import { pairingActivities } from './pairing';
import { provisioningActivities } from './provisioning';
import { sharingActivities } from './sharing';
import { firmwareUpdateActivities } from './firmware-updates';

export interface ActivityDeps {
  db: Db;
  temporal: Client;
  taskQueue: string;
  credentials: CredentialDeriver;
  /** Where device logins reach the broker (broker/credential-store.ts). */
  broker: CredentialStore;
  /** Messages to devices (pairing requests, their owner, OTA requests). */
  publisher: DevicePublisher;
  /** Where devices download firmware (PUBLIC_URL); without it no update can be sent. */
  firmwareBaseUrl?: string;
  /** FIRMWARE_URL_TTL_S. */
  downloadUrlTtlS?: number;
}

export function createActivities(deps: ActivityDeps) {
  // One classification of permanent errors for every activity (activities/failures.ts).
  return classifyFailures({
    ...provisioningActivities(deps),
    ...deviceStatusActivities(deps),
    ...bulkStatusActivities(deps),
    ...brokerCredentialActivities(deps),
    ...pairingActivities(deps),
    ...sharingActivities(deps),
    ...firmwareUpdateActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
