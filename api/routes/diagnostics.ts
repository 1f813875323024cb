// Diagnostics (stage 6): the history of every sensor (raw or time-bucketed) and device logs.
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { deviceParams, errorResponse, logSchema, logsQuery, page, telemetryBucketSchema, telemetryPointSchema, telemetryQuery } from '../schemas';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../domain/errors';
import { visibilityOn } from '../property-visibility';
import { describedProperties } from '../../db/repositories/device-properties';
import { requireDevice } from '../require-device';
import { listLogs } from '../../db/repositories/device-logs';
import { MAX_BUCKETS, queryTelemetry, telemetryBuckets } from '../../db/repositories/telemetry';

const telemetryResponse = z.union([
  page(telemetryPointSchema).describe('raw points, newest first unless order=asc'),
  z.object({ node: z.string(), property: z.string(), bucketSeconds: z.number(), from: z.string(), to: z.string(), buckets: z.array(telemetryBucketSchema) }).describe('with ?bucket='),
]);

export function diagnosticsRoutes(d: ApiDeps) {
  return [
    route({
      method: 'get',
      path: '/devices/:id/telemetry',
      tag: 'diagnostics',
      summary: 'History of sensor values: raw points (paginated), or aggregates per time bucket with ?bucket=1m',
      permission: 'devices:telemetry',
      params: deviceParams,
      query: telemetryQuery,
      responses: { 200: { description: 'points or buckets', schema: telemetryResponse }, 400: errorResponse('bad range or bucket'), 404: errorResponse('no such device, or a property the caller may not see') },
      handler: async ({ params, query, access }) => {
        if (query.from && query.to && Date.parse(query.to) <= Date.parse(query.from)) throw new ValidationError('to: must be after from', [{ path: 'to', message: 'must be after from' }]);
        const device = await requireDevice(d.db, access, params.id);
        const v = await visibilityOn(d.db, device.relation, device);
        if (query.node && query.property && !v.sees(query.node, query.property)) throw new NotFoundError('property', `${query.node}/${query.property}`);
        // Company staff see every property; a device's end user the described ones declared for them.
        const only = device.relation === 'staff' ? undefined : (await describedProperties(d.db, params.id)).filter((p) => v.sees(p.node, p.property));
        if (query.bucket === undefined) return queryTelemetry(d.db, { deviceId: params.id, ...query, only });
        if (!query.node || !query.property || !query.from) {
          throw new ValidationError('bucketed telemetry needs node, property and from', [{ path: 'bucket', message: 'needs node, property and from' }]);
        }
        const to = query.to ?? new Date().toISOString();
        const span = (Date.parse(to) - Date.parse(query.from)) / 1000;
        if (span <= 0) throw new ValidationError('from must be before to (default: now)', [{ path: 'from', message: 'must be before to (default: now)' }]);
        if (span / query.bucket > MAX_BUCKETS) {
          throw new ValidationError(`bucket: at most ${MAX_BUCKETS} buckets per query`, [{ path: 'bucket', message: `at most ${MAX_BUCKETS} buckets per query: widen the bucket or narrow the range` }]);
        }
        const buckets = await telemetryBuckets(d.db, { deviceId: params.id, node: query.node, property: query.property, from: query.from, to, bucketSeconds: query.bucket });
        return { node: query.node, property: query.property, bucketSeconds: query.bucket, from: new Date(query.from).toISOString(), to: new Date(to).toISOString(), buckets };
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/logs',
      tag: 'diagnostics',
      summary: 'Log records the device published, newest first (kept LOG_RETENTION_DAYS, at most LOG_RETENTION_PER_DEVICE per device)',
      permission: 'devices:telemetry',
      params: deviceParams,
      query: logsQuery,
      responses: { 200: { description: 'a page of log records', schema: page(logSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        await requireDevice(d.db, access, params.id);
        return listLogs(d.db, { deviceId: params.id, minLevel: query.level, from: query.from, to: query.to, limit: query.limit, cursor: query.cursor });
      },
    }),
  ];
}
