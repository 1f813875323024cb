// Migrations at start-up, safe when several processes start at once: knex refuses to run while
// another holds its lock, so wait for that one to finish instead of failing.
import type { Db } from './knex';
import { migrateLatest } from './knex';

export async function migrateWhenFree(db: Db, deadlineMs = 60_000): Promise<string[]> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await migrateLatest(db);
    } catch (err) {
      if ((err as Error).name !== 'MigrationLocked' || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
