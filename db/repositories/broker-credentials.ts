// What the broker has of each device's credentials (devices.broker_generation), block state and
// secret rotation: the rows behind activities/broker-credentials.ts.
import type { Db } from '../knex';
import { sha256Hex } from '../../domain/credentials';

export interface CredentialRow {
  id: string;
  secret_generation: number;
  blocked: boolean;
  broker_generation: number | null;
}

/** Devices of a batch in [fromSeq, toSeq) whose current login the broker does not have yet. */
export async function unsyncedInBatch(db: Db, batchId: string, fromSeq: number, toSeq: number): Promise<CredentialRow[]> {
  return db('devices')
    .where({ batch_id: batchId, blocked: false })
    .andWhere('seq', '>=', fromSeq)
    .andWhere('seq', '<', toSeq)
    .andWhereRaw('broker_generation IS DISTINCT FROM secret_generation')
    .select('id', 'secret_generation', 'blocked', 'broker_generation');
}

export async function credentialRow(db: Db, deviceId: string): Promise<CredentialRow | null> {
  return (await db('devices').where({ id: deviceId }).first('id', 'secret_generation', 'blocked', 'broker_generation')) ?? null;
}

/** Records that the broker has these generations (unless the secret rotated meanwhile). */
export async function markSynced(db: Db, synced: readonly { id: string; generation: number | null }[]): Promise<void> {
  if (synced.length === 0) return;
  await db.raw(
    `UPDATE devices d SET broker_generation = v.generation
       FROM unnest(?::text[], ?::int[]) AS v(id, generation)
      WHERE d.id = v.id AND (v.generation IS NULL OR d.secret_generation = v.generation)`,
    [synced.map((s) => s.id), synced.map((s) => s.generation) as unknown as string[]],
  );
}

/** Sets the block flag; returns the row as it is now (null: no such device). */
export async function setBlocked(db: Db, deviceId: string, blocked: boolean): Promise<CredentialRow | null> {
  const [row] = await db('devices').where({ id: deviceId }).update({ blocked }).returning(['id', 'secret_generation', 'blocked', 'broker_generation']);
  return (row as CredentialRow | undefined) ?? null;
}

/**
 * Moves the device to the next secret generation once per rotation ID (a retried attempt finds
 * its own rotation done). `hashOf` gives the new secret's stored SHA-256.
 */
export async function rotateSecret(db: Db, deviceId: string, rotationId: string, secretOf: (generation: number) => string): Promise<CredentialRow | null> {
  return db.transaction(async (trx) => {
    const row = await trx('devices').where({ id: deviceId }).forUpdate().first('id', 'secret_generation', 'blocked', 'broker_generation', 'secret_rotation_id');
    if (!row) return null;
    if (row.secret_rotation_id === rotationId) return row as CredentialRow;
    const generation = (row.secret_generation as number) + 1;
    const [updated] = await trx('devices')
      .where({ id: deviceId })
      .update({ secret_generation: generation, secret_hash: sha256Hex(secretOf(generation)), secret_rotation_id: rotationId })
      .returning(['id', 'secret_generation', 'blocked', 'broker_generation']);
    return updated as CredentialRow;
  });
}

/** Every device the broker should let in (not blocked), in pages: for a full rebuild of the broker's logins. */
export async function* allUnblocked(db: Db, pageSize = 10_000): AsyncGenerator<CredentialRow[]> {
  let after = '';
  for (;;) {
    const rows: CredentialRow[] = await db('devices').where({ blocked: false }).andWhere('id', '>', after).orderBy('id').limit(pageSize).select('id', 'secret_generation', 'blocked', 'broker_generation');
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.id;
  }
}

/** After a full rebuild: the broker has every unblocked device's current login, and no blocked one's. */
export async function markAllSynced(db: Db): Promise<void> {
  await db.raw('UPDATE devices SET broker_generation = CASE WHEN blocked THEN NULL ELSE secret_generation END WHERE broker_generation IS DISTINCT FROM CASE WHEN blocked THEN NULL ELSE secret_generation END');
}
