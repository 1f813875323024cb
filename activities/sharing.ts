// Activities that end shares: at their expiry (the share-expiry workflow) and all of a device's
// when it is unpaired. Both are idempotent: ending an ended share changes nothing.
import type { Client } from '@temporalio/client';
import type { Db } from '../db/knex';
import { endDeviceShares, endShare } from '../db/repositories/shares';
import { signalShareEnded } from '../temporal/share-workflows';

export function sharingActivities({ db, temporal }: { db: Db; temporal: Client }) {
  return {
    async expireShare(a: { shareId: string }): Promise<void> {
      await endShare(db, a.shareId, 'expired', { userId: null, credentialId: null });
    },

    /** Ends every open share of an unpaired device and stops their timers; the IDs it ended. */
    async endDeviceShares(a: { deviceId: string; actorId: string }): Promise<string[]> {
      const ended = await endDeviceShares(db, a.deviceId, 'unpaired', { userId: a.actorId, credentialId: null });
      // Best effort: a timer that misses the signal finds its share ended when it fires.
      await Promise.allSettled(ended.map((id) => signalShareEnded(temporal, id)));
      return ended;
    },
  };
}
