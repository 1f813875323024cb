// Batches: provisioning (stage 1) and the manufacturer's downloads.
import { WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { Reply, route } from '../http/route';
import {
  batchSchema, batchWithCountsSchema, bulkOperationSchema, bulkStatusBody, createBatchBody, errorResponse, idParams, listBatchesQuery, page,
} from '../schemas';
import { acceptBatchUpdate, batchWorkflowId, bulkStatusWorkflowId } from '../../domain/messages';
import { ConflictError, ValidationError } from '../../domain/errors';
import { crockford, newEntityId } from '../../domain/ids';
import { sha256Hex } from '../../domain/credentials';
import { SA } from '../../domain/search-attributes';
import type { Batch, NewBatch } from '../../domain/model';
import { countDevicesByStatus, getBatch, listBatches } from '../../db/repositories/batches';
import { getCompany } from '../../db/repositories/companies';
import { getBulkOperation, insertBulkOperation } from '../../db/repositories/bulk-operations';
import { batchCsv } from '../../files/csv';
import { bundleZip } from '../../files/bundle-zip';
import { batchExportRows, type ExportGate } from '../exports';
import { actorOf, assertMayTarget } from './status-rules';
import { audit } from '../audit';
import { enforce } from '../enforce';
import { companiesWith, listScope } from '../http/policy';
import type { Access } from '../http/route';
import { requireBatch } from '../require-batch';
import type { batchProvisioning } from '../../workflows/batch-provisioning';
import type { bulkStatus } from '../../workflows/bulk-status';

/** Printable ASCII (what an HTTP header can carry), 1-200 characters. */
const idempotencyKey = z.string().regex(/^[\x21-\x7E]([\x20-\x7E]{0,198}[\x21-\x7E])?$/, 'must be 1-200 printable ASCII characters');
const batchHeaders = z.object({ 'idempotency-key': idempotencyKey.optional().describe('a retried POST with the same key returns the batch the first one created') });
const bulkHeaders = z.object({ 'idempotency-key': idempotencyKey.optional().describe('a retried POST with the same key (same user, same batch) returns the operation the first one started, instead of starting another') });

/** The ID a keyed request stands for: the same caller and key always give the same ID. */
function keyedId(parts: string[]): string {
  return crockford(Buffer.from(sha256Hex(parts.join('\0')), 'hex').subarray(0, 16));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** A file name safe in Content-Disposition: the batch name's plain characters, then its ID. */
function downloadName(batch: Batch, ext: string): string {
  const stem = batch.name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  return `${stem ? `${stem}-` : ''}${batch.id}.${ext}`;
}

/** What a batch will look like once a worker has written it. */
function pendingBatch({ createdBy: _by, ...b }: NewBatch): Batch {
  return { ...b, provisioning: { status: 'provisioning', devicesCreated: 0, workflowsStarted: 0, devicesReadyAt: null, readyAt: null }, createdAt: new Date().toISOString() };
}

export function batchRoutes(d: ApiDeps, downloads: ExportGate) {
  async function readyForExport(access: Access, id: string): Promise<Batch> {
    const batch = await requireBatch(d.db, access, id);
    if (!batch.provisioning.devicesReadyAt) {
      throw new ConflictError('batch_provisioning', `batch '${id}' is still being provisioned (${batch.provisioning.devicesCreated} of ${batch.count} devices created); try again shortly`);
    }
    return batch;
  }

  /**
   * The company a new batch goes to: the one named (where the caller may create batches), else the
   * caller's only such company. A platform admin names it.
   */
  async function batchCompany(access: Access, named: string | undefined): Promise<string> {
    const mine = companiesWith(access.principal, 'batches:create');
    const companyId = named ?? (mine.length === 1 && !access.principal.platformAdmin ? mine[0]! : undefined);
    if (companyId === undefined) throw new ValidationError('companyId: name the company the batch belongs to', [{ path: 'companyId', message: 'required: the caller creates batches for no single company' }]);
    const company = await getCompany(d.db, companyId);
    enforce(access, company && { kind: 'company', companyId }, 'company', companyId);
    return companyId;
  }

  return [
    route({
      method: 'post',
      path: '/batches',
      tag: 'batches',
      summary: 'Create a batch of device IDs, each with its own credentials and QR code',
      permission: 'batches:create',
      headers: batchHeaders,
      body: createBatchBody,
      status: 201,
      responses: {
        201: { description: 'the batch; its devices are created in the background (see provisioning)', schema: batchSchema, headers: { Location: 'the batch' } },
        202: { description: 'accepted, but no worker has written it yet: poll the Location', schema: batchSchema, headers: { Location: 'the batch' } },
        400: errorResponse('invalid body; details name the field; companyId missing where the caller has no single company to default to'),
        403: errorResponse("the caller may not create batches in that company (needs 'batches:create')"),
        404: errorResponse('no such company, or the caller has no role in it'),
      },
      handler: async ({ req, res, body, principal, access }) => {
        const companyId = await batchCompany(access, body.companyId);
        // An Idempotency-Key makes a retried POST return the batch the first one created.
        const key = req.headers['idempotency-key'] as string | undefined; // checked by `headers`
        const id = key !== undefined ? keyedId([principal.userId, key]) : newEntityId();
        const newBatch = {
          id,
          name: body.name,
          count: body.count,
          info: body.info ?? null,
          color: body.color?.toUpperCase() ?? null,
          model: body.model ?? null,
          companyId,
          createdBy: principal.userId,
        };
        const accepted = d.temporal.workflow
          .executeUpdateWithStart(acceptBatchUpdate, {
            startWorkflowOperation: new WithStartWorkflowOperation<typeof batchProvisioning>('batchProvisioning', {
              workflowId: batchWorkflowId(id),
              taskQueue: d.taskQueue,
              args: [{ batch: newBatch }],
              workflowIdConflictPolicy: 'USE_EXISTING', // a retry while it still runs joins it
              workflowIdReusePolicy: 'REJECT_DUPLICATE', // a retry after it finished must not run it again
              typedSearchAttributes: [{ key: SA.BatchId, value: id }],
            }),
          })
          .catch(async (err) => {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
            return (await getBatch(d.db, id))!;
          });
        // The workflow is started (durable) before any worker answers; if none answers in time,
        // say so honestly with 202: the batch will be built when a worker runs.
        const batch = await Promise.race([accepted, sleep(d.acceptWaitMs ?? 15_000).then(() => null)]);
        await audit(d.db, principal, { action: 'batch.created', companyId, batchId: id, target: { type: 'batch', id }, details: { count: body.count } });
        if (!batch) {
          accepted.catch(() => undefined);
          res.location(`/api/v1/batches/${id}`);
          return new Reply(202, pendingBatch(newBatch));
        }
        res.location(`/api/v1/batches/${batch.id}`);
        return batch;
      },
    }),

    route({
      method: 'get',
      path: '/batches',
      tag: 'batches',
      summary: 'List batches, newest first',
      permission: 'batches:read',
      query: listBatchesQuery,
      responses: { 200: { description: "a page of the batches of the caller's companies", schema: page(batchSchema) } },
      handler: async ({ query, principal }) => listBatches(d.db, { ...query, companyIds: listScope(principal, 'batches:read')?.companyIds }),
    }),

    route({
      method: 'get',
      path: '/batches/:id',
      tag: 'batches',
      summary: 'Read a batch, with its devices counted by status',
      permission: 'batches:read',
      params: idParams,
      responses: { 200: { description: 'the batch', schema: batchWithCountsSchema }, 404: errorResponse('no such batch') },
      handler: async ({ params, access }) => ({ ...(await requireBatch(d.db, access, params.id)), devicesByStatus: await countDevicesByStatus(d.db, params.id) }),
    }),

    route({
      method: 'get',
      path: '/batches/:id/devices.csv',
      tag: 'batches',
      summary: "The manufacturer's CSV: one row per device with its secret and pairing code",
      permission: 'batches:export',
      params: idParams,
      responses: {
        200: { description: 'CSV, streamed', contentType: 'text/csv' },
        404: errorResponse('no such batch'),
        409: errorResponse('the batch is still being provisioned'),
        503: errorResponse('as many downloads are running as the server streams at once; retry after Retry-After seconds'),
      },
      handler: async ({ res, params, access, principal }) => {
        const batch = await readyForExport(access, params.id);
        await audit(d.db, principal, { action: 'batch.exported', companyId: batch.companyId, batchId: batch.id, target: { type: 'batch', id: batch.id }, details: { format: 'csv' } });
        await downloads.send(res, { type: 'text/csv; charset=utf-8', name: downloadName(batch, 'csv') }, () => batchCsv(batchExportRows(d.db, d.credentials, batch, d.publicMqttUrl ?? null)));
      },
    }),

    route({
      method: 'get',
      path: '/batches/:id/bundle.zip',
      tag: 'batches',
      summary: 'devices.csv plus qr/<deviceId>.png for every device, streamed as one zip',
      permission: 'batches:export',
      params: idParams,
      responses: {
        200: { description: 'zip, streamed', contentType: 'application/zip' },
        404: errorResponse('no such batch'),
        409: errorResponse('the batch is still being provisioned'),
        503: errorResponse('as many downloads are running as the server streams at once; retry after Retry-After seconds'),
      },
      handler: async ({ res, params, access, principal }) => {
        const batch = await readyForExport(access, params.id);
        await audit(d.db, principal, { action: 'batch.exported', companyId: batch.companyId, batchId: batch.id, target: { type: 'batch', id: batch.id }, details: { format: 'zip' } });
        await downloads.send(res, { type: 'application/zip', name: downloadName(batch, 'zip') }, () => bundleZip(() => batchExportRows(d.db, d.credentials, batch, d.publicMqttUrl ?? null)));
      },
    }),

    route({
      method: 'post',
      path: '/batches/:id/status',
      tag: 'batches',
      summary: "Change the status of a batch's devices (all, or those listed)",
      permission: 'devices:status',
      params: idParams,
      headers: bulkHeaders,
      body: bulkStatusBody,
      responses: {
        200: { description: 'finished: how many changed, were already there, or were refused (and why)', schema: bulkOperationSchema, headers: { Location: 'the bulk operation' } },
        202: { description: 'still running: poll the Location', schema: bulkOperationSchema, headers: { Location: 'the bulk operation' } },
        403: errorResponse('this token may not set that status'),
        404: errorResponse('no such batch'),
      },
      handler: async ({ req, res, params, body, principal, access }) => {
        // A batch still being provisioned is fine: the operation waits for its devices (workflows/bulk-status.ts).
        const batch = await requireBatch(d.db, access, params.id);
        assertMayTarget(principal, batch.companyId, body.status);
        // A client whose answer was lost retries with its key and joins the first operation: a late
        // duplicate must not apply the change a second time (e.g. send reworked devices back again).
        const key = req.headers['idempotency-key'] as string | undefined; // checked by `headers`
        const operationId = key !== undefined ? keyedId([principal.userId, 'bulk-status', batch.id, key]) : newEntityId();
        const workflowId = bulkStatusWorkflowId(operationId);
        const handle = await d.temporal.workflow
          .start<typeof bulkStatus>('bulkStatus', {
            workflowId,
            taskQueue: d.taskQueue,
            args: [{ operationId, batchId: batch.id, to: body.status, actor: actorOf(principal, batch.companyId), actorId: principal.userId, deviceIds: body.deviceIds }],
            typedSearchAttributes: [{ key: SA.BatchId, value: batch.id }],
            workflowIdConflictPolicy: 'USE_EXISTING', // a retry while it runs joins it
            workflowIdReusePolicy: 'REJECT_DUPLICATE', // a retry after it finished must not run it again
          })
          .catch((err) => {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
            return d.temporal.workflow.getHandle<typeof bulkStatus>(workflowId);
          });
        // The row the Location reads, written once the workflow is accepted (its first activity
        // writes the same row, idempotently): polled at once, the operation is never a 404.
        await insertBulkOperation(d.db, { id: operationId, batchId: batch.id, targetStatus: body.status, requested: body.deviceIds?.length ?? batch.count, createdBy: principal.userId });
        await audit(d.db, principal, { action: 'batch.status_changed', companyId: batch.companyId, batchId: batch.id, target: { type: 'bulk-operation', id: operationId }, details: { status: body.status, devices: body.deviceIds?.length ?? 'all' } });
        const waitMs = d.bulkWaitMs ?? 20_000;
        const finished = await Promise.race([handle.result().then(() => true), sleep(waitMs).then(() => false)]);
        res.location(`/api/v1/bulk-operations/${operationId}`);
        const op = await getBulkOperation(d.db, operationId);
        const outcome = op ?? { id: operationId, batchId: batch.id, targetStatus: body.status, state: 'running', requested: body.deviceIds?.length ?? batch.count, changed: 0, unchanged: 0, refusedCount: 0, refused: [], createdAt: new Date().toISOString(), finishedAt: null };
        return new Reply(finished ? 200 : 202, outcome);
      },
    }),

    route({
      method: 'get',
      path: '/bulk-operations/:id',
      tag: 'batches',
      summary: 'Progress or outcome of a bulk status change',
      permission: 'devices:status',
      params: idParams,
      responses: { 200: { description: 'the operation', schema: bulkOperationSchema }, 404: errorResponse('no such operation') },
      handler: async ({ params, access }) => {
        const op = await getBulkOperation(d.db, params.id);
        const batch = op && (await getBatch(d.db, op.batchId));
        enforce(access, batch && { kind: 'company', companyId: batch.companyId }, 'bulk operation', params.id);
        return op!;
      },
    }),
  ];
}
