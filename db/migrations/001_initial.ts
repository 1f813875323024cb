// Provisioning schema: batches, devices, their status history, API tokens, platform settings.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('settings', (t) => {
    t.text('key').primary();
    t.text('value').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('tokens', (t) => {
    t.text('id').primary();
    t.text('kind').notNullable(); // admin | manufacturer (roles grow here)
    t.text('name').notNullable();
    t.text('token_hash').notNullable().unique(); // sha256 of the token; the token itself is shown once
    t.text('company_id');
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('revoked_at', { useTz: true });
    t.timestamp('last_used_at', { useTz: true });
  });

  await knex.schema.createTable('batches', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.integer('count').notNullable();
    t.text('info');
    t.text('color');
    t.text('model');
    t.text('company_id');
    // provisioning -> ready; progress counters let a caller watch a large batch being built
    t.text('provisioning_status').notNullable().defaultTo('provisioning');
    t.integer('devices_created').notNullable().defaultTo(0);
    t.integer('workflows_started').notNullable().defaultTo(0);
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('devices_ready_at', { useTz: true });
    t.timestamp('ready_at', { useTz: true });
    t.index(['created_at', 'id']);
  });

  await knex.schema.createTable('devices', (t) => {
    t.text('id').primary();
    t.text('batch_id').notNullable().references('batches.id');
    t.integer('seq').notNullable(); // position in the batch: makes chunk inserts idempotent
    t.text('status').notNullable().defaultTo('new');
    t.integer('status_version').notNullable().defaultTo(0); // orders concurrent status writes
    t.timestamp('status_changed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.boolean('blocked').notNullable().defaultTo(false);
    t.integer('secret_generation').notNullable().defaultTo(1);
    t.text('secret_hash').notNullable();
    t.text('pairing_code_hash').notNullable();
    t.text('model');
    t.text('company_id');
    t.text('owner_id');
    t.boolean('online').notNullable().defaultTo(false);
    t.timestamp('last_seen_at', { useTz: true });
    t.text('firmware_version');
    t.jsonb('update_policy').notNullable().defaultTo(JSON.stringify({ mode: 'manual' }));
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['batch_id', 'seq']);
    t.index(['batch_id', 'id']);
    t.index(['batch_id', 'status']);
    t.index(['status', 'id']);
  });

  await knex.schema.createTable('device_status_events', (t) => {
    t.text('device_id').notNullable().references('devices.id');
    t.integer('version').notNullable();
    t.text('from_status').notNullable();
    t.text('to_status').notNullable();
    t.text('actor').notNullable();
    t.text('actor_id');
    t.text('reason');
    t.timestamp('at', { useTz: true }).notNullable();
    t.primary(['device_id', 'version']);
  });

  await knex.schema.createTable('bulk_operations', (t) => {
    t.text('id').primary();
    t.text('batch_id').notNullable().references('batches.id');
    t.text('target_status').notNullable();
    t.text('state').notNullable().defaultTo('running'); // running | completed
    t.integer('requested').notNullable().defaultTo(0);
    t.integer('changed').notNullable().defaultTo(0);
    t.integer('unchanged').notNullable().defaultTo(0);
    t.jsonb('refused').notNullable().defaultTo(JSON.stringify({ count: 0, details: [] }));
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['bulk_operations', 'device_status_events', 'devices', 'batches', 'tokens', 'settings']) {
    await knex.schema.dropTableIfExists(table);
  }
}
