// `npm run migrate`: applies pending migrations and exits (the compose stack's one-shot job;
// api and worker also migrate at start, safely in parallel).
import { createDb } from '../db/knex';
import { migrateWhenFree } from '../db/migrate';
import { loadConfigOrExit } from '../runtime/config';
import { redactUrl, serviceAddresses } from '../runtime/services';

async function main() {
  const { databaseUrl } = serviceAddresses(loadConfigOrExit());
  const db = createDb(databaseUrl);
  try {
    const applied = await migrateWhenFree(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : `${redactUrl(databaseUrl)} is up to date`);
  } finally {
    await db.destroy();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`DATABASE_URL: migration failed: ${err.message}\n`);
  process.exit(1);
});
