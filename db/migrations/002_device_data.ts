// What devices say and what the platform asks of them: the Homie self-description and current
// values, the telemetry history, logs, alerts and their rules, configuration (desired and
// reported) and diagnostic commands.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.text('homie_version'); // "4.0.0" / "3.0.1", from $homie
    t.text('homie_state'); // last $state: init | ready | disconnected | sleeping | lost | alert
    t.text('name'); // $name
    t.jsonb('attributes').notNullable().defaultTo('{}'); // other device attributes: $nodes, $extensions, $fw/*, $stats/*...
    t.timestamp('state_changed_at', { useTz: true });
    t.index(['online', 'id']);
  });

  // One row per Homie property: its description and its current value. Node attributes ride on
  // each of the node's properties (a node without properties has nothing to show).
  await knex.schema.createTable('device_properties', (t) => {
    t.text('device_id').notNullable().references('devices.id').onDelete('CASCADE');
    t.text('node').notNullable();
    t.text('property').notNullable();
    t.text('node_name');
    t.text('node_type');
    t.text('name');
    t.text('datatype').notNullable().defaultTo('string'); // Homie's default
    t.text('format');
    t.text('unit');
    t.boolean('settable').notNullable().defaultTo(false);
    t.boolean('retained').notNullable().defaultTo(true);
    // Which roles may see this property (an end user sees controls, a serviceman full telemetry).
    // Filled by the platform, not the device; roles arrive in a later issue.
    t.specificType('visibility', 'text[]').notNullable().defaultTo(knex.raw(`'{admin,manufacturer,technician,owner}'::text[]`));
    t.text('value');
    t.timestamp('value_at', { useTz: true });
    t.timestamp('described_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['device_id', 'node', 'property']);
  });

  // Every value ever published. No foreign key (the bridge checks the device before it writes,
  // and a key check per row would halve the ingest rate); `num` holds the numeric reading, for
  // aggregates and charts. Scale-out: a partitioned table or TimescaleDB hypertable on `at`.
  await knex.raw(`
    CREATE TABLE telemetry (
      device_id text NOT NULL,
      node text NOT NULL,
      property text NOT NULL,
      at timestamptz NOT NULL,
      value text NOT NULL,
      num double precision
    )`);
  await knex.raw('CREATE INDEX telemetry_series ON telemetry (device_id, node, property, at)');
  await knex.raw('CREATE INDEX telemetry_at_brin ON telemetry USING brin (at)');

  await knex.schema.createTable('device_logs', (t) => {
    t.bigIncrements('id');
    t.text('device_id').notNullable();
    t.timestamp('at', { useTz: true }).notNullable(); // when the platform received it
    t.timestamp('device_time', { useTz: true }); // the device's own timestamp, if it gave one
    t.text('level').notNullable();
    t.text('message').notNullable();
    t.jsonb('fields');
    t.index(['device_id', 'at']);
    t.index(['at']);
  });

  await knex.schema.createTable('alert_rules', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    // Scope: one device, one model, or (both null) every device.
    t.text('device_id').references('devices.id').onDelete('CASCADE');
    t.text('model');
    t.text('company_id');
    t.text('node').notNullable();
    t.text('property').notNullable();
    t.text('operator').notNullable(); // > >= < <= == !=
    t.double('threshold').notNullable();
    t.text('severity').notNullable().defaultTo('warning');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['node', 'property']);
  });

  await knex.schema.createTable('alerts', (t) => {
    t.text('id').primary();
    t.text('device_id').notNullable().references('devices.id').onDelete('CASCADE');
    t.text('source').notNullable(); // device ($state = alert) | rule
    t.text('rule_id').references('alert_rules.id').onDelete('SET NULL');
    t.text('node');
    t.text('property');
    t.text('value');
    t.text('severity').notNullable();
    t.text('message').notNullable();
    t.text('state').notNullable().defaultTo('open'); // open | resolved
    t.timestamp('raised_at', { useTz: true }).notNullable();
    t.timestamp('resolved_at', { useTz: true });
    t.index(['device_id', 'raised_at']);
    t.index(['state', 'raised_at']);
  });
  // At most one open alert per device and cause, so a flapping value does not flood the list.
  await knex.raw(`CREATE UNIQUE INDEX alerts_one_open ON alerts (device_id, source, coalesce(rule_id, '')) WHERE state = 'open'`);

  await knex.schema.createTable('device_config', (t) => {
    t.text('device_id').primary().references('devices.id').onDelete('CASCADE');
    t.jsonb('desired').notNullable().defaultTo('{}');
    t.integer('desired_version').notNullable().defaultTo(0);
    t.timestamp('desired_at', { useTz: true });
    t.text('desired_by');
    t.jsonb('reported').notNullable().defaultTo('{}');
    t.integer('reported_version').notNullable().defaultTo(0);
    t.timestamp('reported_at', { useTz: true });
    t.timestamp('sent_at', { useTz: true }); // last time the desired settings were published
  });

  await knex.schema.createTable('device_commands', (t) => {
    t.text('id').primary(); // also the MQTT request ID
    t.text('device_id').notNullable().references('devices.id').onDelete('CASCADE');
    t.text('command').notNullable();
    t.jsonb('args');
    t.text('status').notNullable(); // sent | succeeded | failed | timed_out
    t.jsonb('result');
    t.text('error');
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.index(['device_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['device_commands', 'device_config', 'alerts', 'alert_rules', 'device_logs', 'telemetry', 'device_properties']) {
    await knex.schema.dropTableIfExists(table);
  }
  await knex.schema.alterTable('devices', (t) => {
    t.dropIndex(['online', 'id']);
    t.dropColumns('homie_version', 'homie_state', 'name', 'attributes', 'state_changed_at');
  });
}
