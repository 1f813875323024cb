// People: users (passwords hashed with scrypt), companies, participations (a user's role in a
// company), sessions, API tokens that belong to a user, and the audit log. Today's tokens are
// carried over: admin tokens belong to the platform admin, manufacturer tokens to a manufacturer
// of a "Default company" that also receives every batch and device that had no company.
import type { Knex } from 'knex';
import { newEntityId } from '../../domain/ids';

/** settings key naming the platform admin created on first start (ADMIN_TOKEN acts as that user). */
export const BOOTSTRAP_ADMIN_SETTING = 'bootstrap_admin_user_id';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('email').notNullable(); // stored lowercased; unique
    t.text('name');
    t.text('password_hash'); // null: cannot sign in with a password (the bootstrap admin, until given one)
    t.boolean('platform_admin').notNullable().defaultTo(false);
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['email']);
  });

  await knex.schema.createTable('companies', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('participations', (t) => {
    t.text('id').primary();
    t.text('company_id').notNullable().references('companies.id').onDelete('CASCADE');
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('role').notNullable(); // admin | manufacturer | technician | viewer (domain/roles.ts)
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['company_id', 'user_id']); // one role per user and company
    t.index(['user_id']);
  });

  await knex.schema.createTable('sessions', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('token_hash').notNullable().unique(); // sha256; the token is shown once, at sign-in
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
    t.index(['user_id']);
  });

  await knex.schema.alterTable('tokens', (t) => {
    t.text('user_id').references('users.id').onDelete('CASCADE');
    t.timestamp('expires_at', { useTz: true });
    t.index(['user_id', 'id']);
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor_user_id'); // null: the platform itself
    t.text('actor_credential'); // the token or session that acted (its ID, never the secret)
    t.text('action').notNullable(); // domain/audit.ts
    t.text('company_id');
    t.text('device_id');
    t.text('batch_id');
    t.text('target_type');
    t.text('target_id');
    t.jsonb('details');
    t.index(['company_id', 'id']);
    t.index(['device_id', 'id']);
  });

  // Lists scoped by the policy filter on these.
  await knex.schema.alterTable('devices', (t) => {
    t.index(['company_id', 'id']);
    t.index(['owner_id', 'id']);
  });
  await knex.schema.alterTable('batches', (t) => {
    t.index(['company_id', 'created_at', 'id']);
  });

  await carryOver(knex);
  await knex.schema.alterTable('tokens', (t) => t.dropColumn('kind'));
  await knex.raw('ALTER TABLE tokens ALTER COLUMN user_id SET NOT NULL');
}

/** Gives today's tokens, batches and devices their place in the new model. */
async function carryOver(knex: Knex): Promise<void> {
  const tokens: { id: string; kind: string }[] = await knex('tokens').select('id', 'kind');
  const orphans = await knex('batches').whereNull('company_id').first('id');
  if (tokens.length === 0 && !orphans) return;

  const adminId = newEntityId();
  await knex('users').insert({ id: adminId, email: 'admin@localhost', name: 'platform admin', platform_admin: true, created_by: 'migration' });
  await knex('settings').insert({ key: BOOTSTRAP_ADMIN_SETTING, value: adminId }).onConflict('key').ignore();
  await knex('tokens').whereIn('id', tokens.filter((t) => t.kind === 'admin').map((t) => t.id)).update({ user_id: adminId, company_id: null });

  const makers = tokens.filter((t) => t.kind !== 'admin');
  if (makers.length === 0 && !orphans) return;
  const companyId = newEntityId();
  await knex('companies').insert({ id: companyId, name: 'Default company', created_by: 'migration' });
  await knex('batches').whereNull('company_id').update({ company_id: companyId });
  await knex('devices').whereNull('company_id').update({ company_id: companyId });
  if (makers.length > 0) {
    const makerId = newEntityId();
    await knex('users').insert({ id: makerId, email: 'manufacturer@localhost', name: 'manufacturer (carried over)', created_by: 'migration' });
    await knex('participations').insert({ id: newEntityId(), company_id: companyId, user_id: makerId, role: 'manufacturer', created_by: 'migration' });
    await knex('tokens').whereIn('id', makers.map((t) => t.id)).update({ user_id: makerId, company_id: companyId });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tokens', (t) => t.text('kind').notNullable().defaultTo('manufacturer'));
  await knex.raw(`UPDATE tokens SET kind = 'admin' WHERE user_id IN (SELECT id FROM users WHERE platform_admin)`);
  await knex.schema.alterTable('batches', (t) => t.dropIndex(['company_id', 'created_at', 'id']));
  await knex.schema.alterTable('devices', (t) => {
    t.dropIndex(['company_id', 'id']);
    t.dropIndex(['owner_id', 'id']);
  });
  await knex.schema.alterTable('tokens', (t) => {
    t.dropIndex(['user_id', 'id']);
    t.dropColumns('user_id', 'expires_at');
  });
  for (const table of ['audit_events', 'sessions', 'participations', 'companies', 'users']) await knex.schema.dropTableIfExists(table);
  await knex('settings').where({ key: BOOTSTRAP_ADMIN_SETTING }).delete();
}
