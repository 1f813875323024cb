// Which QoS 1 packet IDs each bridge session has committed, so a message the broker sends again
// (its PUBACK was lost to a crash after the commit) is acknowledged without being stored twice
// (bridge/redelivery.ts). IDs in blocks of 256 (db/repositories/telemetry.ts): at most 256 rows
// per bridge instance, updated in place.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bridge_committed_packets', (t) => {
    t.text('client_id').notNullable();
    t.integer('block').notNullable(); // packet ID >> 8
    // Element (packet ID & 255) + 1: a 32-bit hash of topic and payload of what was last committed
    // under that ID (the broker reuses an ID once it has our PUBACK); NULL: nothing recorded.
    t.specificType('digests', 'integer[]').notNullable();
    t.primary(['client_id', 'block']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('bridge_committed_packets');
}
