// Activities of the device lifecycle workflow.
import type { Db } from '../db/knex';
import { applyStatusChange } from '../db/repositories/devices';
import type { StatusChange } from '../domain/model';

export function deviceStatusActivities({ db }: { db: Db }) {
  return {
    /** Idempotent and order-safe: see applyStatusChange. */
    async recordStatusChange(change: StatusChange): Promise<void> {
      await applyStatusChange(db, change);
    },
  };
}
