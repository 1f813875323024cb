// Migrations listed in code (not discovered on disk) so they load the same under tsx, jest
// and a compiled build. Append new ones; never edit one that has shipped.
import type { Knex } from 'knex';
import * as m001 from './001_initial';

const MIGRATIONS: Record<string, Knex.Migration> = {
  '001_initial': m001,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};
