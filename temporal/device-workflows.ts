// Client-side calls on device lifecycle workflows, shared by the API and the activities.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { deviceWorkflowId, transitionUpdate, type DeviceLifecycleInput, type TransitionRequest, type TransitionResult } from '../domain/messages';
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

/** Starts the device's lifecycle workflow; one that is already running counts as started. */
export async function startDeviceLifecycle(client: Client, taskQueue: string, input: DeviceLifecycleInput): Promise<'started' | 'existing'> {
  try {
    await client.workflow.start<typeof deviceLifecycle>('deviceLifecycle', {
      workflowId: deviceWorkflowId(input.deviceId),
      taskQueue,
      args: [input],
      typedSearchAttributes: lifecycleSearchAttributes(input),
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'existing';
    throw err;
  }
}

/** Asks the device's workflow for a transition; refusals come back as domain errors (409/403). */
export async function transitionDevice(client: Client, deviceId: string, req: TransitionRequest, updateId?: string): Promise<TransitionResult> {
  try {
    return await client.workflow.getHandle(deviceWorkflowId(deviceId)).executeUpdate(transitionUpdate, { args: [req], updateId });
  } catch (err) {
    throw toAppError(err, `device '${deviceId}'`);
  }
}
