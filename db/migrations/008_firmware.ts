// Firmware releases (issue 11): one image per company, model and semantic version, stored by
// ota/storage.ts under `storage_key`, with the size, SHA-256 and Ed25519 signature devices check.
// A release starts in the `staging` channel; `stable` feeds the nightly auto-update.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('firmware_releases', (t) => {
    t.text('id').primary();
    t.text('company_id').notNullable().references('companies.id');
    t.text('model').notNullable();
    t.text('version').notNullable(); // domain/semver.ts
    t.bigInteger('size').notNullable();
    t.text('sha256').notNullable();
    t.text('signature').notNullable(); // base64 Ed25519 over the image's bytes
    t.text('key_fingerprint').notNullable(); // which signing key: ota/signing.ts
    t.text('channel').notNullable().defaultTo('staging'); // domain/firmware.ts CHANNELS
    t.text('notes');
    t.text('storage_key').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('promoted_at', { useTz: true });
    t.text('promoted_by');
    t.unique(['company_id', 'model', 'version']);
    t.index(['company_id', 'model', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('firmware_releases');
}
