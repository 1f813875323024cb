// Which QoS 1 packet IDs each bridge session has committed, so a message the broker sends again
// (its PUBACK was lost to a crash after the commit) is acknowledged without being stored twice.
// One row per (client ID, packet ID): at most 65,535 per bridge instance, updated in place.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bridge_committed_packets', (t) => {
    t.text('client_id').notNullable();
    t.integer('packet_id').notNullable();
    // A 32-bit hash of topic and payload: tells this message from an earlier one that had the
    // same packet ID (the broker reuses an ID once it has our PUBACK).
    t.integer('digest').notNullable();
    t.primary(['client_id', 'packet_id']);
  });
  // Every batch rewrites its packets' rows: room in each page keeps those updates HOT.
  await knex.raw('ALTER TABLE bridge_committed_packets SET (fillfactor = 50)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('bridge_committed_packets');
}
