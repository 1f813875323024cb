// The firmware routes' dependencies, built the same way by the API process, tests and benchmarks.
import { generateKeyPairSync } from 'node:crypto';
import type { Db } from '../db/knex';
import type { CredentialDeriver } from '../domain/credentials';
import { DEFAULT_FIRMWARE_MAX_BYTES } from '../domain/firmware';
import { createDeviceAuthenticator } from '../broker/authenticator';
import { firmwareSigner, type FirmwareSigner } from '../ota/signing';
import { localFirmwareStorage } from '../ota/storage';
import type { FirmwareDeps } from './routes/firmware';

export function firmwareDeps(o: { db: Db; credentials: CredentialDeriver; dir: string; signer: FirmwareSigner; maxBytes?: number }): FirmwareDeps {
  return { storage: localFirmwareStorage(o.dir), signer: o.signer, maxBytes: o.maxBytes ?? DEFAULT_FIRMWARE_MAX_BYTES, devices: createDeviceAuthenticator({ db: o.db, credentials: o.credentials }) };
}

/** A signer with a key of its own (tests, benchmarks): nothing is settled in Postgres. */
export function ephemeralSigner(): FirmwareSigner {
  return firmwareSigner(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}
