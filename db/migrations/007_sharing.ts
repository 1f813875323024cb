// Device shares (owner → another user, as serviceman or viewer, maybe until a time) and the
// per-model declaration of which property each relation may see and set. The per-row
// `device_properties.visibility` of 002 never had a writer: the declaration replaces it.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('device_shares', (t) => {
    t.text('id').primary();
    t.text('device_id').notNullable().references('devices.id');
    t.text('user_id').notNullable().references('users.id');
    t.text('role').notNullable(); // domain/roles.ts SHARE_ROLES
    t.timestamp('expires_at', { useTz: true });
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.text('end_reason'); // domain/sharing.ts SHARE_END_REASONS
    t.index(['device_id', 'created_at']);
  });
  // One open share per person per device; the policy reads it by (user, device).
  await knex.raw('CREATE UNIQUE INDEX device_shares_one_open ON device_shares (user_id, device_id) WHERE ended_at IS NULL');

  await knex.schema.createTable('property_access', (t) => {
    t.text('company_id').notNullable().references('companies.id');
    t.text('model').notNullable(); // or '*': every model of the company
    t.text('node').notNullable(); // a Homie node, '$settings', or '*'
    t.text('property').notNullable(); // a Homie property, a setting, or '*'
    t.specificType('visible_to', 'text[]').notNullable();
    t.specificType('settable_by', 'text[]').notNullable();
    t.text('updated_by').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['company_id', 'model', 'node', 'property']);
  });

  await knex.schema.alterTable('device_properties', (t) => t.dropColumn('visibility'));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_properties', (t) => {
    t.specificType('visibility', 'text[]').notNullable().defaultTo(knex.raw(`'{admin,manufacturer,technician,owner}'::text[]`));
  });
  await knex.schema.dropTableIfExists('property_access');
  await knex.schema.dropTableIfExists('device_shares');
}
