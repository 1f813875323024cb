// Activities of the pairing and unpairing workflows. Each is idempotent: a retry (after a worker
// crash, say) finds what the first attempt did and does nothing twice.
import type { Client } from '@temporalio/client';
import type { Db } from '../db/knex';
import { clearOwner, completePairing, finishPairing, insertPairing, pairingFacts, type PairingFacts } from '../db/repositories/pairings';
import type { Actor, DeviceStatus } from '../domain/device-status';
import { AppError } from '../domain/errors';
import type { PairingView } from '../domain/messages';
import type { FinishedPairingStatus } from '../domain/pairing';
import { topics } from '../domain/topics';
import type { DevicePublisher } from '../runtime/device-publisher';
import { transitionDevice } from '../temporal/device-workflows';

export interface PairingDeps {
  db: Db;
  temporal: Client;
  publisher: DevicePublisher;
}

export type TransitionOutcome = { ok: true; changed: boolean } | { ok: false; code: string; message: string };

export function pairingActivities({ db, temporal, publisher }: PairingDeps) {
  return {
    async pairingFacts(deviceId: string): Promise<PairingFacts | null> {
      return pairingFacts(db, deviceId);
    },

    /**
     * Asks the device's lifecycle workflow for the change. The update ID makes a retry of this
     * activity the same update (Temporal deduplicates it); a refusal is an answer, not a failure.
     */
    async transitionForPairing(a: { deviceId: string; to: DeviceStatus; actor?: Actor; actorId: string; reason: string; updateId: string }): Promise<TransitionOutcome> {
      try {
        const r = await transitionDevice(temporal, a.deviceId, { to: a.to, actor: a.actor ?? 'system', actorId: a.actorId, reason: a.reason }, a.updateId);
        return { ok: true, changed: r.changed };
      } catch (err) {
        if (err instanceof AppError && err.status >= 400 && err.status < 500 && err.code !== 'not_ready') return { ok: false, code: err.code, message: err.message };
        throw err;
      }
    },

    async recordPairing(p: PairingView & { createdAt: string }): Promise<void> {
      await insertPairing(db, p);
    },

    /** QoS 1, not retained: a request is an event for a device that is online now (it expires anyway). */
    async askDeviceToPair(a: { deviceId: string; pairingId: string; expiresAt: string }): Promise<void> {
      await publisher.publish(topics.pairingRequest(a.deviceId), JSON.stringify({ pairingId: a.pairingId, expiresAt: a.expiresAt }), { qos: 1, retain: false });
    },

    async completePairing(a: { pairingId: string; deviceId: string; userId: string; at: string }): Promise<void> {
      await completePairing(db, a);
    },

    async finishPairing(a: { pairingId: string; status: FinishedPairingStatus; at: string }): Promise<void> {
      await finishPairing(db, a.pairingId, a.status, a.at);
    },

    /** Retained, so the device learns its owner (or that it has none) whenever it next connects. */
    async publishOwner(a: { deviceId: string; ownerId: string | null }): Promise<void> {
      await publisher.publish(topics.owner(a.deviceId), a.ownerId === null ? '' : JSON.stringify({ ownerId: a.ownerId }), { qos: 1, retain: true });
    },

    async clearOwner(a: { deviceId: string; ownerId: string }): Promise<void> {
      await clearOwner(db, a.deviceId, a.ownerId);
    },
  };
}
