// Activities that mirror device credentials into the broker (broker/credential-store.ts). Each is
// idempotent: Postgres says what the broker should have, the store's operations can be repeated,
// and `broker_generation` is written only after the broker has the login. So a retry after a
// worker crash, or after a broker restart, converges on the same state.
import type { CredentialStore, MqttLogin } from '../broker/credential-store';
import { deviceMqttUsername } from '../domain/broker-identity';
import type { CredentialDeriver } from '../domain/credentials';
import { NotFoundError } from '../domain/errors';
import type { Db } from '../db/knex';
import { credentialRow, markSynced, rotateSecret, setBlocked, unsyncedInBatch, type CredentialRow } from '../db/repositories/broker-credentials';
import { withHeartbeat } from './heartbeat';

export interface BrokerCredentialDeps {
  db: Db;
  credentials: CredentialDeriver;
  broker: CredentialStore;
}

/** Logins put in one store call: one password-file rewrite, or one dynsec message. */
const SYNC_SLICE = 2000;

export function brokerCredentialActivities({ db, credentials, broker }: BrokerCredentialDeps) {
  const loginOf = (r: Pick<CredentialRow, 'id' | 'secret_generation'>): MqttLogin => ({
    username: deviceMqttUsername(r.id),
    password: credentials.deviceSecret(r.id, r.secret_generation),
  });

  async function putRows(rows: CredentialRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += SYNC_SLICE) {
      const slice = rows.slice(i, i + SYNC_SLICE);
      await broker.put(slice.map(loginOf));
      await markSynced(db, slice.map((r) => ({ id: r.id, generation: r.secret_generation })));
    }
  }

  async function apply(row: CredentialRow): Promise<void> {
    if (row.blocked) {
      await broker.remove([deviceMqttUsername(row.id)]);
      await markSynced(db, [{ id: row.id, generation: null }]);
    } else if (row.broker_generation !== row.secret_generation) {
      await putRows([row]);
    }
  }

  return {
    /** Puts the logins of a batch's devices with seq in [fromSeq, toSeq) that the broker lacks. */
    async syncBatchCredentials(a: { batchId: string; fromSeq: number; toSeq: number }): Promise<{ synced: number }> {
      const rows = await unsyncedInBatch(db, a.batchId, a.fromSeq, a.toSeq);
      await withHeartbeat(() => ({ missing: rows.length }), () => putRows(rows));
      return { synced: rows.length };
    },

    /** Makes sure the broker has this device's current login (or, blocked, none). */
    async ensureDeviceCredentials(deviceId: string): Promise<void> {
      const row = await credentialRow(db, deviceId);
      if (!row) throw new NotFoundError('device', deviceId);
      await apply(row);
    },

    /** Records the block flag, then removes (or restores) the login; a connected blocked device is cut off. */
    async setDeviceBlocked(a: { deviceId: string; blocked: boolean }): Promise<void> {
      const row = await setBlocked(db, a.deviceId, a.blocked);
      if (!row) throw new NotFoundError('device', a.deviceId);
      await apply(row);
    },

    /**
     * The next secret generation, once per rotation ID; the broker gets the new login (the old one
     * stops working). Returns the generation only: the secret never enters the workflow history.
     */
    async rotateDeviceSecret(a: { deviceId: string; rotationId: string }): Promise<{ generation: number }> {
      const row = await rotateSecret(db, a.deviceId, a.rotationId, (g) => credentials.deviceSecret(a.deviceId, g));
      if (!row) throw new NotFoundError('device', a.deviceId);
      await apply(row);
      return { generation: row.secret_generation };
    },
  };
}
