// Test fixture: an `npm start`-like parent that runs the embedded PostgreSQL until it is killed.
// Usage: tsx postgres-child.ts <dataDir> <port>
import { startEmbeddedPostgres } from '../postgres';
import { createLogger } from '../../logger';

const [dataDir, port] = process.argv.slice(2);
startEmbeddedPostgres({ dataDir: dataDir!, port: Number(port), log: createLogger('silent', 'fixture') }).then(
  (pg) => process.stdout.write(`READY ${pg.url}\n`),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
setInterval(() => undefined, 60_000); // stay up until killed
