// Migrations listed in code (not discovered on disk) so they load the same under tsx, jest
// and a compiled build. Append new ones; never edit one that has shipped.
import type { Knex } from 'knex';
import * as m001 from './001_initial';
import * as m002 from './002_device_data';
import * as m003 from './003_bridge_committed_packets';
import * as m004 from './004_people';
import * as m005 from './005_broker_identity';
import * as m006 from './006_pairing';
import * as m007 from './007_sharing';
import * as m008 from './008_firmware';
import * as m009 from './009_device_updates';

const MIGRATIONS: Record<string, Knex.Migration> = {
  '001_initial': m001,
  '002_device_data': m002,
  '003_bridge_committed_packets': m003,
  '004_people': m004,
  '005_broker_identity': m005,
  '006_pairing': m006,
  '007_sharing': m007,
  '008_firmware': m008,
  '009_device_updates': m009,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};
