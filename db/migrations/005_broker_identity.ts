// Broker identity: which generation of each device's secret the broker has (the lifecycle does
// not let a device be shipped before it is there), and the last secret rotation applied (so a
// retried rotation does not rotate twice).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.integer('broker_generation'); // NULL: the broker has no login for the device
    t.text('secret_rotation_id');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.dropColumn('broker_generation');
    t.dropColumn('secret_rotation_id');
  });
}
