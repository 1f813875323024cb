// The platform key that device credentials are derived from (see domain/credentials.ts).
// From DEVICE_SECRET_KEY when set (a real deployment: the same value on every api and worker);
// otherwise made once and kept in DATA_DIR/device-secret.key (0600). Its fingerprint is settled in
// Postgres on first use, so a process started with a different key refuses to run instead of
// handing out credentials that the devices were never flashed with.
import fs from 'node:fs';
import path from 'node:path';
import { CredentialDeriver, newDeviceSecretKey } from '../domain/credentials';
import type { Db } from '../db/knex';
import { settleSetting } from '../db/repositories/settings';

const KEY_FILE = 'device-secret.key';

function readOrCreateKeyFile(dataDir: string): string {
  const file = path.join(dataDir, KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    fs.writeFileSync(file, newDeviceSecretKey() + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return fs.readFileSync(file, 'utf8').trim();
}

export class DeviceKeyMismatchError extends Error {}

export async function loadCredentialDeriver(db: Db, cfg: { DEVICE_SECRET_KEY?: string; DATA_DIR: string }): Promise<CredentialDeriver> {
  const key = cfg.DEVICE_SECRET_KEY ?? readOrCreateKeyFile(cfg.DATA_DIR);
  const deriver = new CredentialDeriver(Buffer.from(key, 'utf8'));
  const settled = await settleSetting(db, 'device_key_fingerprint', deriver.fingerprint());
  if (settled !== deriver.fingerprint()) {
    throw new DeviceKeyMismatchError(
      `DEVICE_SECRET_KEY: this key (fingerprint ${deriver.fingerprint()}) is not the one this database's devices were provisioned with (${settled}); ` +
        `set DEVICE_SECRET_KEY to the original key${cfg.DEVICE_SECRET_KEY ? '' : ` or restore ${path.join(cfg.DATA_DIR, KEY_FILE)}`}`,
    );
  }
  return deriver;
}
