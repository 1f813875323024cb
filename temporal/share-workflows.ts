// Client-side calls on share timers (api/routes/shares.ts, activities/sharing.ts).
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { shareEndedSignal, shareExpiryWorkflowId, type ShareExpiryInput } from '../domain/messages';
import type { shareExpiry } from '../workflows/share-expiry';
import { toAppError } from './errors';

/** Starts the timer of a share with an end; a repeat meets the running one. 503 when Temporal is unreachable. */
export async function startShareExpiry(temporal: Client, taskQueue: string, input: ShareExpiryInput): Promise<void> {
  try {
    await temporal.workflow.start<typeof shareExpiry>('shareExpiry', {
      workflowId: shareExpiryWorkflowId(input.shareId),
      taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  } catch (err) {
    throw toAppError(err, `share '${input.shareId}'`);
  }
}

/**
 * Tells a share's timer that the share is over. A share without an end has no timer, and one whose
 * timer already fired is gone: both are fine. Any other failure is left to the timer itself, which
 * finds the share ended when it fires.
 */
export async function signalShareEnded(temporal: Client, shareId: string): Promise<boolean> {
  try {
    await temporal.workflow.getHandle(shareExpiryWorkflowId(shareId)).signal(shareEndedSignal);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
