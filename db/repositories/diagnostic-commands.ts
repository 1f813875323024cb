// Diagnostic commands sent to devices (the API side; the bridge records late answers through its own module).
// The API writes the request and (when it saw the answer) the outcome; the bridge records the
// outcome too, so an answer that arrives after the API gave up is still kept.
import type { Db } from '../knex';
import { decodeCursor, toPage, type Page } from '../pagination';

export const COMMAND_STATUSES = ['sent', 'succeeded', 'failed', 'timed_out'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

export interface DeviceCommand {
  id: string;
  deviceId: string;
  command: string;
  args: Record<string, unknown> | null;
  status: CommandStatus;
  result: unknown;
  error: string | null;
  createdBy: string | null;
  createdAt: string;
  finishedAt: string | null;
}

interface Row {
  id: string;
  device_id: string;
  command: string;
  args: Record<string, unknown> | null;
  status: CommandStatus;
  result: unknown;
  error: string | null;
  created_by: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const toCommand = (r: Row): DeviceCommand => ({
  id: r.id,
  deviceId: r.device_id,
  command: r.command,
  args: r.args,
  status: r.status,
  result: r.result ?? null,
  error: r.error,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
});

export async function insertCommand(db: Db, c: { id: string; deviceId: string; command: string; args: Record<string, unknown> | null; createdBy: string | null }): Promise<void> {
  await db('device_commands').insert({ id: c.id, device_id: c.deviceId, command: c.command, args: c.args ? JSON.stringify(c.args) : null, status: 'sent', created_by: c.createdBy });
}

/** Records the outcome once: a second writer (API or bridge) changes nothing. */
export async function finishCommand(db: Db, id: string, outcome: { status: Exclude<CommandStatus, 'sent'>; result?: unknown; error?: string | null; at?: Date }): Promise<void> {
  await db('device_commands')
    .where({ id, status: 'sent' })
    .update({
      status: outcome.status,
      result: outcome.result === undefined ? null : JSON.stringify(outcome.result),
      error: outcome.error ?? null,
      finished_at: outcome.at ?? new Date(),
    });
}

export async function getCommand(db: Db, deviceId: string, id: string): Promise<DeviceCommand | null> {
  const r = await db<Row>('device_commands').where({ id, device_id: deviceId }).first();
  return r ? toCommand(r) : null;
}

/** Newest first. */
export async function listCommands(db: Db, deviceId: string, q: { limit: number; cursor?: string }): Promise<Page<DeviceCommand>> {
  const query = db<Row>('device_commands').where({ device_id: deviceId });
  if (q.cursor) {
    const [at, id] = decodeCursor(q.cursor, ['timestamp', 'string'] as const);
    query.whereRaw('(created_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows = await query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(q.limit + 1);
  return toPage(rows, q.limit, toCommand, (r) => [r.created_at.toISOString(), r.id]);
}
