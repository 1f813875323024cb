// One knex handle per process. Repositories take a `Db` (or a transaction) as their first argument.
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from './migrations';

export type Db = Knex;

export function createDb(url: string, pool = { min: 0, max: 10 }): Db {
  return knexFactory({ client: 'pg', connection: url, pool, acquireConnectionTimeout: 10_000 });
}

/** Runs pending migrations. knex's own lock table makes concurrent callers (N api instances) safe. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = await db.migrate.latest({ migrationSource });
  return applied as string[];
}
