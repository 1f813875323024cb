// Pairing attempts (one row per attempt, written by the pairing workflow) and wrong pairing codes
// (the durable record the rate limit counts; no code, right or wrong, is ever stored).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('pairings', (t) => {
    t.text('id').primary();
    t.text('device_id').notNullable().references('devices.id');
    t.text('user_id').notNullable();
    t.text('status').notNullable(); // domain/pairing.ts PAIRING_STATUSES
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('finished_at', { useTz: true });
    t.index(['device_id', 'created_at']);
  });
  // At most one attempt pending per device, whatever happens to the workflows.
  await knex.raw(`CREATE UNIQUE INDEX pairings_one_pending_per_device ON pairings (device_id) WHERE status = 'pending'`);

  await knex.schema.createTable('pairing_failures', (t) => {
    t.bigIncrements('id');
    t.text('device_id'); // null: a device ID that does not exist (counted against the user)
    t.text('user_id').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['device_id', 'at']);
    t.index(['user_id', 'at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('pairing_failures');
  await knex.schema.dropTableIfExists('pairings');
}
