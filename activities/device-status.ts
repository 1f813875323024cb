// Activities of the device lifecycle workflow.
import type { Db } from '../db/knex';
import { applyStatusChange, lifecycleSeed } from '../db/repositories/devices';
import { NotFoundError } from '../domain/errors';
import type { LifecycleState } from '../domain/messages';
import type { StatusChange } from '../domain/model';

export function deviceStatusActivities({ db }: { db: Db }) {
  return {
    /** Idempotent and order-safe: see applyStatusChange. */
    async recordStatusChange(change: StatusChange): Promise<void> {
      await applyStatusChange(db, change);
    },

    /** The state a re-created workflow starts from. An unknown device is permanent (not retried). */
    async readLifecycleState(deviceId: string): Promise<LifecycleState> {
      const row = await lifecycleSeed(db, deviceId);
      if (!row) throw new NotFoundError('device', deviceId);
      return { status: row.status, blocked: row.blocked, version: row.status_version };
    },
  };
}
