// One row per firmware update of one device (issue 11), written by the device lifecycle workflow's
// activities as the update goes: the API and Grafana read updates here, never from Temporal.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('device_updates', (t) => {
    t.text('id').primary();
    t.text('device_id').notNullable().references('devices.id');
    t.text('release_id').notNullable().references('firmware_releases.id');
    t.text('version').notNullable();
    t.text('from_version');
    t.text('status').notNullable(); // domain/device-update.ts UPDATE_STATUSES
    t.text('step'); // the device's last report: domain/ota.ts OTA_STATES
    t.integer('progress');
    t.text('error');
    t.text('rollout_id');
    t.text('requested_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.index(['device_id', 'created_at']);
    t.index(['rollout_id', 'status']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('device_updates');
}
