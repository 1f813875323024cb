// Platform-wide settings that must agree across every process (e.g. the device key fingerprint).
import type { Db } from '../knex';

/** Stores `value` under `key` unless one is there already; returns the value that is stored. */
export async function settleSetting(db: Db, key: string, value: string): Promise<string> {
  await db('settings').insert({ key, value }).onConflict('key').ignore();
  const row = await db('settings').where({ key }).first('value');
  return row.value as string;
}
