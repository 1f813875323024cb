// Device configuration: what the platform wants (desired, versioned) and what the device applied
// (reported, from `$rdm/config`). The bridge stores reports and re-sends desired settings to a
// device that comes back online behind; the API reads and changes them.
import type { Db } from '../knex';
import type { Settings } from '../../domain/device-messages';
import { mergePatch } from '../../domain/settings';
import { ValidationError } from '../../domain/errors';
import { jsonProblem } from '../../domain/json-limits';
import type { Sql } from './sql';

export interface DeviceConfig {
  deviceId: string;
  desired: Settings;
  desiredVersion: number;
  desiredAt: string | null;
  desiredBy: string | null;
  reported: Settings;
  reportedVersion: number;
  reportedAt: string | null;
  sentAt: string | null;
  /** The device has not applied the latest desired version yet. */
  pending: boolean;
}

/** A device's configuration; a device without a row yet has empty settings at version 0. */
export async function getConfig(db: Db, deviceId: string): Promise<DeviceConfig> {
  const r = await db('device_config').where({ device_id: deviceId }).first();
  if (!r) {
    return { deviceId, desired: {}, desiredVersion: 0, desiredAt: null, desiredBy: null, reported: {}, reportedVersion: 0, reportedAt: null, sentAt: null, pending: false };
  }
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    deviceId,
    desired: r.desired,
    desiredVersion: r.desired_version,
    desiredAt: iso(r.desired_at),
    desiredBy: r.desired_by,
    reported: r.reported,
    reportedVersion: r.reported_version,
    reportedAt: iso(r.reported_at),
    sentAt: iso(r.sent_at),
    pending: r.desired_version > r.reported_version,
  };
}

/**
 * Replaces the desired settings and bumps their version (the caller merges a PATCH first and
 * publishes the result). Returns the new version.
 */
export async function setDesiredConfig(db: Db, deviceId: string, desired: Settings, by: string | null): Promise<number> {
  const r = await db.raw<{ rows: { desired_version: number }[] }>(
    `INSERT INTO device_config (device_id, desired, desired_version, desired_at, desired_by)
     VALUES (?, ?::jsonb, 1, now(), ?)
     ON CONFLICT (device_id) DO UPDATE
        SET desired = excluded.desired, desired_version = device_config.desired_version + 1,
            desired_at = excluded.desired_at, desired_by = excluded.desired_by
     RETURNING desired_version`,
    [deviceId, JSON.stringify(desired), by],
  );
  return r.rows[0]!.desired_version;
}

/**
 * Merges a PATCH (RFC 7386) into the desired settings and bumps their version, atomically (the
 * row is locked, so concurrent PATCHes both apply). Returns the configuration as stored; the
 * caller publishes `{version: desiredVersion, settings: desired}`.
 */
export async function patchDesiredConfig(db: Db, deviceId: string, patch: Settings, by: string | null): Promise<DeviceConfig> {
  await db.transaction(async (trx) => {
    await trx.raw('INSERT INTO device_config (device_id) VALUES (?) ON CONFLICT (device_id) DO NOTHING', [deviceId]);
    const row = await trx('device_config').where({ device_id: deviceId }).forUpdate().first('desired');
    const desired = mergePatch(row.desired, patch);
    // Each patch is bounded at the edge; the merged document must be too, or many patches grow it without end.
    const problem = jsonProblem(desired);
    if (problem) {
      const path = problem.path.join('.') || 'body';
      throw new ValidationError(`${path}: the configuration after this change ${problem.message}`, [{ path, message: problem.message }]);
    }
    await trx('device_config')
      .where({ device_id: deviceId })
      .update({ desired: JSON.stringify(desired), desired_version: trx.raw('desired_version + 1'), desired_at: trx.fn.now(), desired_by: by });
  });
  return getConfig(db, deviceId);
}

/** One report per device (the batch's last); an older report never replaces a newer one. */
export async function upsertReportedConfig(
  sql: Sql,
  c: { deviceIds: string[]; versions: number[]; settings: string[]; atMs: number[] },
): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `INSERT INTO device_config AS t (device_id, reported, reported_version, reported_at)
     SELECT d, s, v, to_timestamp(ms / 1000.0)
       FROM unnest($1::text[], $2::int[], $3::jsonb[], $4::float8[]) AS u(d, v, s, ms)
     ON CONFLICT (device_id) DO UPDATE
        SET reported = excluded.reported, reported_version = excluded.reported_version, reported_at = excluded.reported_at
      WHERE t.reported_at IS NULL OR t.reported_at <= excluded.reported_at`,
    [c.deviceIds, c.versions, c.settings, c.atMs],
  );
  return r.rowCount ?? 0;
}

export interface PendingConfig {
  deviceId: string;
  version: number;
  settings: Settings;
}

/** Of these devices, those whose desired settings are newer than what they applied. */
export async function pendingConfigs(sql: Sql, deviceIds: string[]): Promise<PendingConfig[]> {
  if (deviceIds.length === 0) return [];
  const r = await sql.query<{ device_id: string; desired_version: number; desired: Settings }>(
    `SELECT device_id, desired_version, desired FROM device_config
      WHERE device_id = ANY ($1::text[]) AND desired_version > reported_version`,
    [deviceIds],
  );
  return r.rows.map((row) => ({ deviceId: row.device_id, version: row.desired_version, settings: row.desired }));
}

/** Records that these devices' desired settings were (re)published. */
export async function markConfigSent(sql: Sql, deviceIds: string[], at: Date): Promise<void> {
  if (deviceIds.length === 0) return;
  await sql.query('UPDATE device_config SET sent_at = $2 WHERE device_id = ANY ($1::text[])', [deviceIds, at]);
}
