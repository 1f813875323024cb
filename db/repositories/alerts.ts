// Alerts and their threshold rules. A device raises an alert with `$state = alert`; a rule raises
// one when a numeric value crosses its threshold. At most one alert is open per device and cause
// (a unique partial index), so a flapping value does not flood the list.
import type { Db } from '../knex';
import { newEntityId } from '../../domain/ids';
import { ValidationError } from '../../domain/errors';
import { decodeCursor, toPage, type Page } from '../pagination';
import type { Sql } from './sql';
import { sharedDeviceIds } from './shares';
import type { ShareRole } from '../../domain/roles';

export const ALERT_OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type AlertOperator = (typeof ALERT_OPERATORS)[number];
export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];
export type AlertSource = 'device' | 'rule';

/** Postgres channel the rule writers notify, so bridges reload their rule cache at once. */
export const ALERT_RULES_CHANNEL = 'rdm_alert_rules';

/** True when `value` is in alarm for this operator and threshold. */
export function breaches(op: AlertOperator, value: number, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

export interface AlertRule {
  id: string;
  name: string;
  /** Scope: one device, one model, one company; all null = every device. */
  deviceId: string | null;
  model: string | null;
  companyId: string | null;
  node: string;
  property: string;
  operator: AlertOperator;
  threshold: number;
  severity: string;
  enabled: boolean;
  createdBy: string | null;
  createdAt: string;
}

interface RuleRow {
  id: string;
  name: string;
  device_id: string | null;
  model: string | null;
  company_id: string | null;
  node: string;
  property: string;
  operator: AlertOperator;
  threshold: number;
  severity: string;
  enabled: boolean;
  created_by: string | null;
  created_at: Date;
}

function toRule(r: RuleRow): AlertRule {
  return {
    id: r.id,
    name: r.name,
    deviceId: r.device_id,
    model: r.model,
    companyId: r.company_id,
    node: r.node,
    property: r.property,
    operator: r.operator,
    threshold: r.threshold,
    severity: r.severity,
    enabled: r.enabled,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
  };
}

export interface NewAlertRule {
  name: string;
  deviceId?: string | null;
  model?: string | null;
  companyId?: string | null;
  node: string;
  property: string;
  operator: AlertOperator;
  threshold: number;
  severity?: string;
  enabled?: boolean;
  createdBy?: string | null;
}

export async function createAlertRule(db: Db, input: NewAlertRule): Promise<AlertRule> {
  if (!(ALERT_OPERATORS as readonly string[]).includes(input.operator)) {
    throw new ValidationError(`operator must be one of ${ALERT_OPERATORS.join(' ')}`, [{ path: 'operator', message: 'unknown operator' }]);
  }
  if (!Number.isFinite(input.threshold)) throw new ValidationError('threshold must be a number', [{ path: 'threshold', message: 'not a number' }]);
  const row: RuleRow = await db.transaction(async (trx) => {
    const [r] = await trx('alert_rules')
      .insert({
        id: newEntityId(),
        name: input.name,
        device_id: input.deviceId ?? null,
        model: input.model ?? null,
        company_id: input.companyId ?? null,
        node: input.node,
        property: input.property,
        operator: input.operator,
        threshold: input.threshold,
        severity: input.severity ?? 'warning',
        enabled: input.enabled ?? true,
        created_by: input.createdBy ?? null,
      })
      .returning('*');
    await trx.raw('SELECT pg_notify(?, ?)', [ALERT_RULES_CHANNEL, r.id]);
    return r;
  });
  return toRule(row);
}

/** True when the rule existed. Its alerts stay (rule_id set to null by the foreign key). */
export async function deleteAlertRule(db: Db, id: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const n = await trx('alert_rules').where({ id }).delete();
    if (n > 0) await trx.raw('SELECT pg_notify(?, ?)', [ALERT_RULES_CHANNEL, id]);
    return n > 0;
  });
}

export async function getAlertRule(db: Db, id: string): Promise<AlertRule | null> {
  const r: RuleRow | undefined = await db('alert_rules').where({ id }).first();
  return r ? toRule(r) : null;
}

/** Rules, oldest first; `deviceId` lists the rules scoped to that device only. */
export async function listAlertRules(db: Db, f: { deviceId?: string; companyIds?: string[]; limit: number; cursor?: string }): Promise<Page<AlertRule>> {
  const q = db('alert_rules').orderBy('id').limit(f.limit + 1);
  if (f.companyIds) q.whereIn('company_id', f.companyIds);
  if (f.deviceId) q.where('device_id', f.deviceId);
  if (f.cursor) q.where('id', '>', decodeCursor(f.cursor, ['string'] as const)[0]);
  const rows: RuleRow[] = await q;
  return toPage(rows, f.limit, toRule, (r) => [r.id]);
}

/** Every enabled rule: what a bridge caches and evaluates. */
export async function loadEnabledRules(sql: Sql): Promise<AlertRule[]> {
  const r = await sql.query<RuleRow>('SELECT * FROM alert_rules WHERE enabled');
  return r.rows.map(toRule);
}

export interface Alert {
  id: string;
  deviceId: string;
  source: AlertSource;
  ruleId: string | null;
  node: string | null;
  property: string | null;
  value: string | null;
  severity: string;
  message: string;
  state: 'open' | 'resolved';
  raisedAt: string;
  resolvedAt: string | null;
}

interface AlertRow {
  id: string;
  device_id: string;
  source: AlertSource;
  rule_id: string | null;
  node: string | null;
  property: string | null;
  value: string | null;
  severity: string;
  message: string;
  state: 'open' | 'resolved';
  raised_at: Date;
  resolved_at: Date | null;
}

function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    deviceId: r.device_id,
    source: r.source,
    ruleId: r.rule_id,
    node: r.node,
    property: r.property,
    value: r.value,
    severity: r.severity,
    message: r.message,
    state: r.state,
    raisedAt: r.raised_at.toISOString(),
    resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null,
  };
}

/**
 * Alerts, newest first, optionally of one device and/or in one state. `scope` (from the policy;
 * null = all): alerts of devices of these companies, owned by this user, or shared with them in one
 * of `shareRoles`. Which of those alerts a device's end user may see is the caller's to filter
 * (api/alert-visibility.ts).
 */
export async function listAlerts(
  db: Db,
  f: { deviceId?: string; state?: 'open' | 'resolved'; scope?: { companyIds: string[]; ownerId: string | null; shareRoles: readonly ShareRole[]; userId: string } | null; limit: number; cursor?: string },
): Promise<Page<Alert>> {
  const q = db('alerts')
    .orderBy([
      { column: 'raised_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(f.limit + 1)
    .select('*', db.raw('raised_at::text AS raised_text'));
  if (f.deviceId) q.where('device_id', f.deviceId);
  if (f.state) q.where('state', f.state);
  if (f.scope) {
    const { companyIds, ownerId, shareRoles, userId } = f.scope;
    q.whereIn('device_id', (sub) => {
      sub.select('id').from('devices').where((w) => {
        w.whereIn('company_id', companyIds);
        if (ownerId) w.orWhere('owner_id', ownerId);
        if (shareRoles.length > 0) w.orWhereIn('id', sharedDeviceIds(db, userId, shareRoles));
      });
    });
  }
  if (f.cursor) {
    const [at, id] = decodeCursor(f.cursor, ['timestamp', 'string'] as const);
    q.whereRaw('(raised_at, id) < (?::timestamptz, ?)', [at, id]);
  }
  const rows: (AlertRow & { raised_text: string })[] = await q;
  return toPage(rows, f.limit, toAlert, (r) => [r.raised_text, r.id]);
}

/** Alerts to open (one per device and cause; an already open one is left alone). */
export interface OpenAlertColumns {
  deviceIds: string[];
  sources: AlertSource[];
  ruleIds: (string | null)[];
  nodes: (string | null)[];
  properties: (string | null)[];
  values: (string | null)[];
  severities: string[];
  messages: string[];
  atMs: number[];
}

export function emptyOpenAlertColumns(): OpenAlertColumns {
  return { deviceIds: [], sources: [], ruleIds: [], nodes: [], properties: [], values: [], severities: [], messages: [], atMs: [] };
}

/** Opens alerts; returns those actually opened (not already open), by source. */
export async function openAlerts(sql: Sql, c: OpenAlertColumns): Promise<{ device: number; rule: number }> {
  const out = { device: 0, rule: 0 };
  if (c.deviceIds.length === 0) return out;
  const ids = c.deviceIds.map(() => newEntityId());
  const r = await sql.query<{ source: AlertSource }>(
    `INSERT INTO alerts (id, device_id, source, rule_id, node, property, value, severity, message, state, raised_at)
     SELECT id, d, s, r, n, p, v, sev, m, 'open', to_timestamp(ms / 1000.0)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::float8[])
            AS u(id, d, s, r, n, p, v, sev, m, ms)
      -- a rule deleted since the bridge loaded it: nothing to raise
      WHERE r IS NULL OR EXISTS (SELECT 1 FROM alert_rules ar WHERE ar.id = r)
     ON CONFLICT DO NOTHING
     RETURNING source`,
    [ids, c.deviceIds, c.sources, c.ruleIds, c.nodes, c.properties, c.values, c.severities, c.messages, c.atMs],
  );
  for (const row of r.rows) out[row.source]++;
  return out;
}

/** Resolves the open alert of each (device, source, rule), if it was raised at or before `at`. */
export async function resolveAlerts(
  sql: Sql,
  c: { deviceIds: string[]; sources: AlertSource[]; ruleIds: (string | null)[]; atMs: number[] },
): Promise<number> {
  if (c.deviceIds.length === 0) return 0;
  const r = await sql.query(
    `UPDATE alerts AS a SET state = 'resolved', resolved_at = to_timestamp(u.ms / 1000.0)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS u(d, s, r, ms)
      WHERE a.state = 'open' AND a.device_id = u.d AND a.source = u.s
        AND coalesce(a.rule_id, '') = coalesce(u.r, '') AND a.raised_at <= to_timestamp(u.ms / 1000.0)`,
    [c.deviceIds, c.sources, c.ruleIds, c.atMs],
  );
  return r.rowCount ?? 0;
}
