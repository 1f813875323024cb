// Request and response schemas: they validate requests and they write the OpenAPI document.
import { z } from 'zod';
import { DEVICE_STATUSES } from '../domain/device-status';
import { DEVICE_ID_PATTERN, ENTITY_ID_PATTERN } from '../domain/ids';

// ---- building blocks ----
export const deviceId = z.string().regex(DEVICE_ID_PATTERN, 'must be a device ID (12 Crockford base32 characters)');
export const entityId = z.string().regex(ENTITY_ID_PATTERN, 'must be an ID (16 Crockford base32 characters)');
export const deviceStatus = z.enum(DEVICE_STATUSES);
const companyId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -');
const timestamp = z.string().describe('ISO 8601 timestamp');

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(500).optional().describe('nextCursor of the previous page'),
};
export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export const idParams = z.object({ id: entityId }).strict();
export const deviceParams = z.object({ id: deviceId }).strict();

// ---- batches ----
export const createBatchBody = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    count: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000'),
    info: z.string().max(4000, 'must be at most 4000 characters').optional(),
    color: z.string().regex(/^#[0-9A-Fa-f]{6}$/, 'must be a colour like #1E90FF').optional(),
    model: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ., _ or -').optional(),
    companyId: companyId.optional(),
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
    reason: z.string().max(500).optional(),
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

// ---- tokens ----
export const createTokenBody = z
  .object({
    kind: z.enum(['manufacturer', 'admin']),
    name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  })
  .strict();

export const tokenSchema = z.object({
  id: z.string(),
  kind: z.enum(['admin', 'manufacturer']),
  name: z.string(),
  companyId: z.string().nullable(),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
  revokedAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
});
export const createdTokenSchema = tokenSchema.extend({ token: z.string().describe('shown only in this response') });

export const errorResponse = (description: string) => ({ description, schema: z.object({ error: z.object({ code: z.string(), message: z.string() }) }) });
