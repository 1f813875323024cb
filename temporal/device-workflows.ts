// Client-side calls on device lifecycle workflows, shared by the API and the activities.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowNotFoundError, type SearchAttributePair } from '@temporalio/common';
import {
  cancelUpdateUpdate,
  deviceWorkflowId,
  rotateSecretUpdate,
  startUpdateUpdate,
  setBlockedUpdate,
  transitionUpdate,
  type BlockRequest,
  type BlockResult,
  type DeviceLifecycleInput,
  type TransitionRequest,
  type TransitionResult,
} from '../domain/messages';
import type { Actor } from '../domain/device-status';
import type { UpdateRequest, UpdateView } from '../domain/device-update';
import { SA } from '../domain/search-attributes';
import type { deviceLifecycle } from '../workflows/device-lifecycle';
import { toAppError } from './errors';

export function lifecycleSearchAttributes(input: DeviceLifecycleInput): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [
    { key: SA.DeviceStatus, value: input.state?.status ?? 'new' },
    { key: SA.BatchId, value: input.batchId },
  ];
  if (input.companyId) pairs.push({ key: SA.CompanyId, value: input.companyId });
  if (input.model) pairs.push({ key: SA.DeviceModel, value: input.model });
  return pairs;
}

/**
 * Starts the device's lifecycle workflow; one that is already running counts as started.
 * A closed run (terminated by an operator, say) does not block a new one.
 */
export async function startDeviceLifecycle(client: Client, taskQueue: string, input: DeviceLifecycleInput): Promise<'started' | 'existing'> {
  try {
    await client.workflow.start<typeof deviceLifecycle>('deviceLifecycle', {
      workflowId: deviceWorkflowId(input.deviceId),
      taskQueue,
      args: [input],
      typedSearchAttributes: lifecycleSearchAttributes(input),
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'existing';
    throw err;
  }
}

/**
 * A device whose workflow run is closed (lost) gets a new run on the same task queue, which reads
 * the device's state from Postgres before it takes updates. Returns false when the device never
 * had a workflow (its batch is still being provisioned).
 */
async function recreateIfLost(client: Client, deviceId: string): Promise<boolean> {
  let d: WorkflowExecutionDescription;
  try {
    d = await client.workflow.getHandle(deviceWorkflowId(deviceId)).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
  if (d.status.name === 'RUNNING') return true; // started meanwhile (by the batch, or a concurrent command)
  const batchId = d.typedSearchAttributes.get(SA.BatchId);
  if (!batchId) return false;
  await startDeviceLifecycle(client, d.taskQueue, {
    deviceId,
    batchId,
    companyId: d.typedSearchAttributes.get(SA.CompanyId) ?? null,
    model: d.typedSearchAttributes.get(SA.DeviceModel) ?? null,
    state: { status: (d.typedSearchAttributes.get(SA.DeviceStatus) ?? 'new') as NonNullable<DeviceLifecycleInput['state']>['status'], blocked: false, version: 0 },
    restoreFromPostgres: true,
  });
  return true;
}

/**
 * Asks the device's workflow for a transition; refusals come back as domain errors (409/403).
 * A lost workflow is re-created from Postgres and asked once more.
 */
export async function transitionDevice(client: Client, deviceId: string, req: TransitionRequest, updateId?: string): Promise<TransitionResult> {
  return askLifecycle(client, deviceId, () => client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(transitionUpdate, { args: [req], updateId }));
}

/** Blocks or unblocks the device through its workflow (Postgres, the broker, then the workflow's flag). */
export async function setDeviceBlocked(client: Client, deviceId: string, req: BlockRequest): Promise<BlockResult> {
  return askLifecycle(client, deviceId, () => client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(setBlockedUpdate, { args: [req] }));
}

/** Rotates the device's MQTT secret; the new generation (the caller derives the secret). */
export async function rotateDeviceSecret(client: Client, deviceId: string, req: { actor: Actor; actorId?: string | null }): Promise<{ generation: number }> {
  return askLifecycle(client, deviceId, () => client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(rotateSecretUpdate, { args: [req] }));
}

/** Starts a firmware update in the device's workflow; answers at once (`queued`), or refuses (busy, blocked, not flashed). */
export async function startDeviceUpdate(client: Client, deviceId: string, req: UpdateRequest): Promise<UpdateView> {
  return askLifecycle(client, deviceId, () => client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(startUpdateUpdate, { args: [req], updateId: `start-${req.updateId}` }));
}

/** Cancels the device's running update; answers it as it ended. */
export async function cancelDeviceUpdate(client: Client, deviceId: string, updateId: string, actorId: string | null): Promise<UpdateView> {
  return askLifecycle(client, deviceId, () => client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(cancelUpdateUpdate, { args: [{ updateId, actorId }] }));
}

/** One call on the device's workflow: a lost workflow is re-created and asked once more; refusals become domain errors. */
async function askLifecycle<T>(client: Client, deviceId: string, ask: () => Promise<T>): Promise<T> {
  try {
    try {
      return await ask();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) || !(await recreateIfLost(client, deviceId))) throw err;
      return await ask();
    }
  } catch (err) {
    throw toAppError(err, `device '${deviceId}'`);
  }
}
