// Answers of devices to diagnostic commands (`$rdm/cmd/<id>/result`), recorded by the bridge in
// batches. The API side of the table (create, read, list) is diagnostic-commands.ts; the API also
// waits for answers live, and whichever writes first finishes the row (status `sent` only).
import type { Sql } from './sql';

export interface CommandResultColumns {
  requestIds: string[];
  deviceIds: string[];
  ok: boolean[];
  /** JSON, or null when the device sent none. */
  results: (string | null)[];
  errors: (string | null)[];
  atMs: number[];
}

export function emptyCommandResultColumns(): CommandResultColumns {
  return { requestIds: [], deviceIds: [], ok: [], results: [], errors: [], atMs: [] };
}

/** Finishes commands still `sent` (a late answer after a time-out, or a repeat, changes nothing). */
export async function recordCommandResults(sql: Sql, c: CommandResultColumns): Promise<number> {
  if (c.requestIds.length === 0) return 0;
  const r = await sql.query(
    `UPDATE device_commands AS c
        SET status = CASE WHEN u.ok THEN 'succeeded' ELSE 'failed' END,
            result = u.result, error = u.error, finished_at = to_timestamp(u.ms / 1000.0)
       FROM unnest($1::text[], $2::text[], $3::bool[], $4::jsonb[], $5::text[], $6::float8[]) AS u(id, d, ok, result, error, ms)
      WHERE c.id = u.id AND c.device_id = u.d AND c.status = 'sent'`,
    [c.requestIds, c.deviceIds, c.ok, c.results, c.errors, c.atMs],
  );
  return r.rowCount ?? 0;
}
