// The embedded Mosquitto's logins rebuilt from Postgres before it starts (`npm start`): the
// password file is only a mirror, so a lost or stale one (a restored backup, a deleted data
// directory) is made right from the system of record.
import type { CredentialDeriver } from '../domain/credentials';
import { deviceMqttUsername } from '../domain/broker-identity';
import type { Db } from '../db/knex';
import { allUnblocked, markAllSynced } from '../db/repositories/broker-credentials';
import type { MqttLogin } from './credential-store';
import { prepareMosquittoAuth } from './mosquitto-files';
import { platformLogins } from './stores';

export async function rebuildMosquittoAuth(db: Db, credentials: CredentialDeriver, dir: string): Promise<{ devices: number }> {
  const logins: MqttLogin[] = platformLogins(credentials);
  let devices = 0;
  for await (const rows of allUnblocked(db)) {
    for (const r of rows) logins.push({ username: deviceMqttUsername(r.id), password: credentials.deviceSecret(r.id, r.secret_generation) });
    devices += rows.length;
  }
  prepareMosquittoAuth(dir, logins, { replace: true });
  await markAllSynced(db);
  return { devices };
}
