// The test database for repository tests: a knex handle and a raw pg pool (the bridge's bulk
// writes take a pool), both closed after the file's tests. Neither connects until first used.
import pg from 'pg';
import { createDb, type Db } from '../../db/knex';
import { testEnv } from './env';

export function repositoryDb(poolMax = 2): { db: Db; pool: pg.Pool } {
  const db = createDb(testEnv().databaseUrl, { min: 0, max: 4 });
  const pool = new pg.Pool({ connectionString: testEnv().databaseUrl, max: poolMax });
  afterAll(async () => {
    await pool.end();
    await db.destroy();
  });
  return { db, pool };
}
