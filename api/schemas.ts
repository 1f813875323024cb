// Request and response schemas: they validate requests and they write the OpenAPI document.
import { z } from 'zod';
import { DEVICE_STATUSES } from '../domain/device-status';
import { DEVICE_ID_PATTERN, ENTITY_ID_PATTERN } from '../domain/ids';
import { AUDIT_ACTIONS } from '../domain/audit';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../domain/passwords';
import { COMPANY_ROLES, SHARE_ROLES } from '../domain/roles';
import { ANY, AUDIENCES, SETTINGS_NODE, SHARE_END_REASONS } from '../domain/sharing';
import { JSON_DOCUMENT_LIMITS, NO_NUL_TEXT, isStorableText, jsonProblem } from '../domain/json-limits';

/**
 * JSON Schemas that stand for a zod schema in the OpenAPI document, where zod's own would say less
 * than the validator does (a query integer parsed from a string, a bucket width with a unit).
 */
const documented = new WeakMap<z.ZodType, Record<string, unknown>>();
function documentAs<T extends z.ZodType>(schema: T, json: Record<string, unknown>): T {
  documented.set(schema, json);
  return schema;
}
export const documentedSchema = (schema: z.ZodType): Record<string, unknown> | undefined => documented.get(schema);

// ---- building blocks ----
// Every string a client sends goes through `text()` (or a pattern that already excludes the
// characters): what Postgres cannot store is refused here with a 400, not by Postgres later.
export const text = () =>
  z
    .string()
    .regex(NO_NUL_TEXT, 'must not contain U+0000')
    .refine(isStorableText, 'must not contain unpaired UTF-16 surrogates');
/** A name: trimmed, then 1-`max` characters. */
const name = (max: number) =>
  text()
    .regex(/\S/, 'must not be empty')
    .trim()
    .max(max, `must be at most ${max} characters`)
    .describe(`leading and trailing whitespace is trimmed; 1-${max} characters`);

/** A JSON document (settings, command arguments) within depth and size limits, every string storable. */
const withinJsonLimits = <T extends z.ZodType>(schema: T) =>
  schema.superRefine((value, ctx) => {
    const problem = jsonProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  });

/**
 * A whole number in a query string, written in plain decimal digits: z.coerce.number() would also
 * take 0x2, 1e1, +5 and ' 5'. Documented as an integer, which is what a client sends.
 */
export function queryInt(min: number, max: number, dflt?: number) {
  const schema = z
    .string()
    .regex(/^(0|[1-9][0-9]{0,15})$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
  documentAs(schema, { type: 'integer', minimum: min, maximum: max, ...(dflt !== undefined ? { default: dflt } : {}) });
  return schema;
}

/** Postgres timestamps reach year 294276, JS Dates year 275760: stay within 0001-9999, which both agree on. */
const isoTime = z.iso
  .datetime({ offset: true, message: 'must be an RFC 3339 date-time like 2024-05-01T12:00:00Z' })
  .refine((v) => {
    const y = new Date(v).getUTCFullYear();
    return y >= 1 && y <= 9999;
  }, 'must be between the years 0001 and 9999')
  .describe('RFC 3339 date-time (years 0001-9999)');
export const deviceId = z.string().regex(DEVICE_ID_PATTERN, 'must be a device ID (12 Crockford base32 characters)');
export const entityId = z.string().regex(ENTITY_ID_PATTERN, 'must be an ID (16 Crockford base32 characters)');
export const deviceStatus = z.enum(DEVICE_STATUSES);
const timestamp = z.string().describe('ISO 8601 timestamp');

export const pageQuery = {
  limit: queryInt(1, 1000, 100).default(100),
  cursor: text().max(500).optional().describe('nextCursor of the previous page'),
};
export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export const idParams = z.object({ id: entityId }).strict();
export const deviceParams = z.object({ id: deviceId }).strict();

// ---- batches ----
export const createBatchBody = z
  .object({
    name: name(200),
    count: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000'),
    info: text().max(4000, 'must be at most 4000 characters').optional(),
    color: z.string().regex(/^#[0-9A-Fa-f]{6}$/, 'must be a colour like #1E90FF').optional(),
    model: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ., _ or -').optional(),
    companyId: entityId.optional().describe("the batch's company: required from a platform admin; a member's batch goes to their company"),
  })
  .strict();

const statusCounts = z.object(Object.fromEntries(DEVICE_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof DEVICE_STATUSES)[number], z.ZodNumber>);

export const batchSchema = z.object({
  id: z.string(),
  name: z.string(),
  count: z.number().int(),
  info: z.string().nullable(),
  color: z.string().nullable(),
  model: z.string().nullable(),
  companyId: z.string().nullable(),
  provisioning: z.object({
    status: z.enum(['provisioning', 'ready']),
    devicesCreated: z.number().int(),
    workflowsStarted: z.number().int(),
    devicesReadyAt: timestamp.nullable(),
    readyAt: timestamp.nullable(),
  }),
  createdAt: timestamp,
});
export const batchWithCountsSchema = batchSchema.extend({ devicesByStatus: statusCounts });

export const listBatchesQuery = z.object({ ...pageQuery }).strict();

// ---- devices ----
export const deviceSchema = z.object({
  id: z.string(),
  batchId: z.string(),
  status: deviceStatus,
  statusChangedAt: timestamp,
  blocked: z.boolean(),
  model: z.string().nullable(),
  companyId: z.string().nullable(),
  ownerId: z.string().nullable(),
  online: z.boolean(),
  lastSeenAt: timestamp.nullable(),
  firmwareVersion: z.string().nullable(),
  updatePolicy: z.object({ mode: z.enum(['auto', 'manual']), time: z.string().optional(), timezone: z.string().optional() }),
  createdAt: timestamp,
});

export const listDevicesQuery = z
  .object({
    status: deviceStatus.optional(),
    batchId: entityId.optional(),
    online: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
    ...pageQuery,
  })
  .strict();

export const statusBody = z
  .object({
    status: deviceStatus,
    reason: text().max(500, 'must be at most 500 characters').optional(),
  })
  .strict();

export const transitionSchema = z.object({
  device: deviceSchema,
  from: deviceStatus,
  to: deviceStatus,
  changed: z.boolean().describe('false when the device already had this status'),
});

export const bulkStatusBody = z
  .object({
    status: deviceStatus,
    deviceIds: z
      .array(deviceId)
      .min(1, 'must list at least one device')
      .max(10_000, 'must list at most 10000 devices; omit it to change the whole batch')
      .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a device')
      .meta({ uniqueItems: true })
      .optional(),
  })
  .strict();

export const bulkOperationSchema = z.object({
  id: z.string(),
  batchId: z.string(),
  targetStatus: deviceStatus,
  state: z.enum(['running', 'completed']),
  requested: z.number().int(),
  changed: z.number().int(),
  unchanged: z.number().int(),
  refusedCount: z.number().int(),
  refused: z.array(z.object({ deviceId: z.string(), code: z.string(), message: z.string() })).describe('at most 1000 listed'),
  createdAt: timestamp,
  finishedAt: timestamp.nullable(),
});

// ---- people: users, sessions, companies, participations, tokens, audit ----
const email = text()
  .max(254, 'must be at most 254 characters')
  .regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'must be an email address')
  .describe('compared without regard to case');
const password = text()
  .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`);

export const createUserBody = z
  .object({
    email,
    password,
    name: name(200).optional(),
    platformAdmin: z.boolean().optional().describe('a platform admin above every company (only a platform admin may create one)'),
  })
  .strict();
export const userSchema = z.object({ id: z.string(), email: z.string(), name: z.string().nullable(), platformAdmin: z.boolean(), createdAt: timestamp });
/** A person as others see them (no platform-admin flag). */
export const personSchema = z.object({ id: z.string(), email: z.string(), name: z.string().nullable(), createdAt: timestamp });
export const findUsersQuery = z.object({ email: email.describe('the exact email (any case): answers that one account, or none') }).strict();

export const signInBody = z.object({ email, password: text().min(1, 'is required').max(MAX_PASSWORD_LENGTH) }).strict();
export const changePasswordBody = z
  .object({ currentPassword: text().min(1, 'is required').max(MAX_PASSWORD_LENGTH), newPassword: password })
  .strict()
  .refine((b) => b.currentPassword !== b.newPassword, { message: 'must differ from the current password', path: ['newPassword'] });
export const sessionSchema = z.object({
  token: z.string().describe('shown only in this response; send it as `Authorization: Bearer <token>`'),
  expiresAt: timestamp,
  user: userSchema,
});

export const companyRole = z.enum(COMPANY_ROLES);
export const companySchema = z.object({ id: z.string(), name: z.string(), createdAt: timestamp });
export const createCompanyBody = z.object({ name: name(200) }).strict();
export const participationSchema = z.object({ id: z.string(), companyId: z.string(), userId: z.string(), email: z.string(), role: companyRole, createdAt: timestamp });
export const participationBody = z.object({ userId: entityId, role: companyRole }).strict();
export const participationParams = z.object({ id: entityId, participationId: entityId }).strict();

export const personRecordSchema = personSchema.extend({
  participations: z.array(participationSchema.extend({ companyName: z.string() })).describe("their roles: all of them to themselves and platform admins; a company admin sees those in the admin's companies only"),
});

export const meSchema = z.object({
  user: userSchema,
  participations: z.array(participationSchema.extend({ companyName: z.string() })),
  credential: z.object({
    via: z.enum(['token', 'session', 'env']),
    id: z.string(),
    companyId: z.string().nullable().describe('a token limited to one company: that company'),
  }),
});

export const createTokenBody = z
  .object({
    name: name(200),
    companyId: entityId.optional().describe('limit the token to this company (where it acts with your role there); omitted: all your rights'),
    expiresAt: isoTime.optional().describe('after this the token is refused (401); omitted: until revoked'),
  })
  .strict();

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  userId: z.string(),
  companyId: z.string().nullable(),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
  expiresAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
});
export const createdTokenSchema = tokenSchema.extend({ token: z.string().describe('shown only in this response') });

export const auditQuery = z.object({ deviceId: deviceId.optional(), companyId: entityId.optional(), ...pageQuery }).strict();
export const auditSchema = z.object({
  id: z.string(),
  at: timestamp,
  actor: z.object({ userId: z.string().nullable(), credentialId: z.string().nullable().describe('the token or session that acted') }),
  action: z.enum(AUDIT_ACTIONS),
  companyId: z.string().nullable(),
  deviceId: z.string().nullable(),
  batchId: z.string().nullable(),
  target: z.object({ type: z.string(), id: z.string() }).nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});

/** The one error body (`{error:{code,message,details?}}`): the OpenAPI document names it `Error`. */
export const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe('one entry per field at fault'),
  }),
});
export const errorResponse = (description: string) => ({ description, schema: errorSchema });

// ---- what devices say: sensors, telemetry, logs, alerts ----
const homieId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a Homie ID (lowercase letters, digits, -)');
export const sensorParams = z.object({ id: deviceId, node: homieId, property: homieId }).strict();

const jsonValue = z.union([z.number(), z.boolean(), text()]);
export const sensorSchema = z.object({
  node: z.string(),
  property: z.string(),
  nodeName: z.string().nullable(),
  nodeType: z.string().nullable(),
  name: z.string().nullable(),
  datatype: z.string(),
  format: z.string().nullable(),
  unit: z.string().nullable(),
  settable: z.boolean(),
  retained: z.boolean(),
  value: jsonValue.nullable().describe('decoded by datatype; null before the first value'),
  payload: z.string().nullable().describe('the value as the device published it'),
  updatedAt: timestamp.nullable(),
  describedAt: timestamp,
  visibility: z.array(z.enum(AUDIENCES)).describe("who of the device's end users sees this property (company staff see every one): the company's declaration for the model, else everyone"),
  settableBy: z.array(z.enum(AUDIENCES)).describe('who of them may set it (empty when it is not settable)'),
  canSet: z.boolean().describe('whether the caller may set it'),
});
export const sensorsSchema = z.object({ deviceId: z.string(), online: z.boolean(), items: z.array(sensorSchema) });

export const setSensorBody = z.object({ value: jsonValue.describe("checked against the property's datatype and format") }).strict();
export const setSensorResult = z.object({
  node: z.string(),
  property: z.string(),
  value: jsonValue,
  payload: z.string(),
  confirmedAt: timestamp,
  latencyMs: z.number().describe('publish to the device’s echo'),
});

/** Bucket widths: a second up to a leap year (Postgres' interval arithmetic overflows far beyond). */
export const MIN_BUCKET_SECONDS = 1;
export const MAX_BUCKET_SECONDS = 366 * 86_400;
const DURATION = /^\d{1,12}(\.\d{1,6})?[smhd]?$/;
/** "30s", "5m", "1h", "1d" or a number of seconds. */
const duration = z
  .string()
  .regex(DURATION, 'must be a duration like 30s, 5m, 1h, 1d')
  .transform((v) => {
    const n = parseFloat(v);
    const unit = v.at(-1)!;
    return n * ({ s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[unit]! || n;
  })
  .refine((s) => s >= MIN_BUCKET_SECONDS, `must be at least ${MIN_BUCKET_SECONDS} second`)
  .refine((s) => s <= MAX_BUCKET_SECONDS, `must be at most ${MAX_BUCKET_SECONDS / 86_400}d`);
documentAs(duration, {
  description: `bucket width: 30s, 5m, 1h, 1d, or a number of seconds; from ${MIN_BUCKET_SECONDS} second to ${MAX_BUCKET_SECONDS / 86_400} days`,
  anyOf: [
    { type: 'integer', minimum: MIN_BUCKET_SECONDS, maximum: MAX_BUCKET_SECONDS, description: 'seconds' },
    { type: 'string', pattern: DURATION.source, description: `with a unit (s, m, h, d); ${MIN_BUCKET_SECONDS}s to ${MAX_BUCKET_SECONDS / 86_400}d` },
  ],
  'x-minimumSeconds': MIN_BUCKET_SECONDS,
  'x-maximumSeconds': MAX_BUCKET_SECONDS,
});

export const telemetryQuery = z
  .object({
    node: homieId.optional(),
    property: homieId.optional(),
    from: isoTime.optional(),
    to: isoTime.optional(),
    bucket: duration.optional().describe('time-bucketed aggregates (avg/min/max/count) of width e.g. 1m; needs node, property, from'),
    order: z.enum(['asc', 'desc']).default('desc'),
    ...pageQuery,
  })
  .strict();
export const telemetryPointSchema = z.object({ node: z.string(), property: z.string(), at: timestamp, value: z.string(), num: z.number().nullable() });
export const telemetryBucketSchema = z.object({ bucket: timestamp, avg: z.number().nullable(), min: z.number().nullable(), max: z.number().nullable(), count: z.number().int() });

export const logsQuery = z
  .object({ level: z.enum(['debug', 'info', 'warn', 'error']).optional().describe('this level and above'), from: isoTime.optional(), to: isoTime.optional(), ...pageQuery })
  .strict();
export const logSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  at: timestamp,
  deviceTime: timestamp.nullable(),
  level: z.string(),
  message: z.string(),
  fields: z.record(z.string(), z.unknown()).nullable(),
});

export const commandBody = z
  .object({
    command: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be a command name like ping, self-test, reboot'),
    args: withinJsonLimits(z.record(text(), z.unknown()))
      .optional()
      .describe(`JSON object, nested at most ${JSON_DOCUMENT_LIMITS.maxDepth} deep, at most ${JSON_DOCUMENT_LIMITS.maxBytes} bytes`),
    timeoutMs: z.number().int().min(100).max(60_000).optional().describe('how long to wait for the answer (default DEVICE_REPLY_TIMEOUT_MS)'),
  })
  .strict();
export const commandParams = z.object({ id: deviceId, commandId: entityId }).strict();
export const commandSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  command: z.string(),
  args: z.record(z.string(), z.unknown()).nullable(),
  status: z.enum(['sent', 'succeeded', 'failed', 'timed_out']),
  result: z.unknown(),
  error: z.string().nullable(),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
  finishedAt: timestamp.nullable(),
});
export const listQuery = z.object({ ...pageQuery }).strict();

export const configSchema = z.object({
  deviceId: z.string(),
  desired: z.record(z.string(), z.unknown()),
  desiredVersion: z.number().int(),
  desiredAt: timestamp.nullable(),
  reported: z.record(z.string(), z.unknown()),
  reportedVersion: z.number().int(),
  reportedAt: timestamp.nullable(),
  sentAt: timestamp.nullable(),
  pending: z.record(z.string(), z.unknown()).describe('desired settings the device has not applied yet (null: remove)'),
  inSync: z.boolean(),
});
export const MAX_SETTINGS_PER_PATCH = 200;
export const configPatchBody = withinJsonLimits(
  z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'setting names: 1-64 letters, digits, _ . -'), z.unknown())
    .refine((o) => Object.keys(o).length > 0, 'must change at least one setting')
    .refine((o) => Object.keys(o).length <= MAX_SETTINGS_PER_PATCH, `at most ${MAX_SETTINGS_PER_PATCH} settings per change`),
)
  .meta({ minProperties: 1, maxProperties: MAX_SETTINGS_PER_PATCH })
  .describe(
    `JSON merge patch (RFC 7386): a value sets, null removes; nested at most ${JSON_DOCUMENT_LIMITS.maxDepth} deep, at most ${JSON_DOCUMENT_LIMITS.maxBytes} bytes as JSON; no U+0000 in any string`,
  );

export const alertsQuery = z.object({ deviceId: deviceId.optional(), state: z.enum(['open', 'resolved']).optional(), ...pageQuery }).strict();
export const deviceAlertsQuery = z.object({ state: z.enum(['open', 'resolved']).optional(), ...pageQuery }).strict();
export const alertSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  source: z.enum(['device', 'rule']),
  ruleId: z.string().nullable(),
  node: z.string().nullable(),
  property: z.string().nullable(),
  value: z.string().nullable(),
  severity: z.string(),
  message: z.string(),
  state: z.enum(['open', 'resolved']),
  raisedAt: timestamp,
  resolvedAt: timestamp.nullable(),
});
export const alertRuleBody = z
  .object({
    name: name(200),
    deviceId: deviceId.optional(),
    model: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
    companyId: entityId.optional().describe("the company whose devices the rule watches: a member's rule is their company's; a platform admin's without one watches every device"),
    node: homieId,
    property: homieId,
    operator: z.enum(['>', '>=', '<', '<=', '==', '!=']),
    threshold: z.number(),
    severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  })
  .strict();
export const alertRuleSchema = z.object({
  id: z.string(),
  name: z.string(),
  deviceId: z.string().nullable(),
  model: z.string().nullable(),
  companyId: z.string().nullable(),
  node: z.string(),
  property: z.string(),
  operator: z.string(),
  threshold: z.number(),
  severity: z.string(),
  enabled: z.boolean(),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
});
export const alertRulesQuery = z.object({ deviceId: deviceId.optional(), ...pageQuery }).strict();

// ---- sharing ----
export const createShareBody = z
  .object({
    userId: entityId.optional().describe('the person the device is shared with (an account on the platform); or name them by `email`'),
    email: email.optional().describe('the person by their account email (exact match, any case), instead of `userId`; 404 user_not_found when no account has it'),
    role: z.enum(SHARE_ROLES).describe('serviceman: sees and sets what the declaration lets a serviceman; viewer: sees, never sets'),
    expiresAt: isoTime.optional().describe('the share ends by itself at this time; omitted: until revoked or the device is unpaired'),
  })
  .strict()
  .refine((b) => (b.userId === undefined) !== (b.email === undefined), { message: 'name the person by exactly one of userId and email', path: ['userId'] })
  .meta({ oneOf: [{ required: ['userId'] }, { required: ['email'] }] })
  .describe('the person by exactly one of userId and email');
export const shareSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  userId: z.string(),
  role: z.enum(SHARE_ROLES),
  expiresAt: timestamp.nullable(),
  createdBy: z.string(),
  createdAt: timestamp,
  endedAt: timestamp.nullable(),
  endReason: z.enum(SHARE_END_REASONS).nullable(),
});
export const shareParams = z.object({ id: deviceId, shareId: entityId }).strict();
export const listSharesQuery = z.object({ includeEnded: z.enum(['true', 'false']).optional().describe('also ended shares (default false)'), ...pageQuery }).strict();

const modelName = z.string().regex(/^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$/, "a device model (1-64 letters, digits, . _ -), or * for every model");
const accessNode = z.string().regex(/^(\*|\$settings|[a-z0-9][a-z0-9-]{0,63})$/, `a Homie node ID, ${SETTINGS_NODE} for the device's settings, or ${ANY}`);
const accessProperty = z.string().regex(/^(\*|[A-Za-z0-9_.-]{1,64})$/, `a Homie property ID or a setting name, or ${ANY}`);
export const modelParams = z.object({ id: entityId, model: modelName }).strict();
export const propertyAccessParams = z.object({ id: entityId, model: modelName, node: accessNode, property: accessProperty }).strict();
const audiences = z.array(z.enum(AUDIENCES)).max(AUDIENCES.length).refine((a) => new Set(a).size === a.length, 'each at most once');
export const propertyAccessBody = z
  .object({
    visibleTo: audiences.describe("who of the device's end users sees the property (company staff always do)"),
    settableBy: audiences.describe('who of them may set it: a subset of visibleTo (a viewer never sets)'),
  })
  .strict()
  .refine((b) => b.settableBy.every((a) => b.visibleTo.includes(a)), { message: 'settableBy: must be a subset of visibleTo', path: ['settableBy'] })
  .refine((b) => !b.settableBy.includes('viewer'), { message: 'settableBy: a viewer never sets', path: ['settableBy'] });
export const propertyAccessSchema = z.object({
  model: z.string(),
  node: z.string(),
  property: z.string(),
  visibleTo: z.array(z.enum(AUDIENCES)),
  settableBy: z.array(z.enum(AUDIENCES)),
});
