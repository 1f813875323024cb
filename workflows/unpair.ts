// Unpairing (by the owner or an admin), as a workflow so that it finishes whatever happens to the
// caller: the device is told it has no owner, the owner is cleared, then the device goes
// `paired -> free`. In that order: until the very end the device is not `free`, so nobody can start
// pairing it while the old owner is still on record.
import { patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { UnpairInput } from '../domain/messages';

export const PATCH_END_SHARES = 'unpair-ends-shares';

const retry = { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 60 } as const;
// The publish and the Postgres write are short: local activities; the lifecycle change waits on another workflow.
const quick = proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds', scheduleToCloseTimeout: '10 minutes', retry });
const acts = proxyActivities<Activities>({ startToCloseTimeout: '10 seconds', scheduleToCloseTimeout: '10 minutes', retry });

export async function unpairDevice(input: UnpairInput): Promise<{ deviceId: string; status: 'free' | 'unchanged' }> {
  await quick.publishOwner({ deviceId: input.deviceId, ownerId: null });
  await quick.clearOwner({ deviceId: input.deviceId, ownerId: input.ownerId });
  // The device's shares end with its owner, before it is free (histories from before shares skip it).
  if (patched(PATCH_END_SHARES)) await quick.endDeviceShares({ deviceId: input.deviceId, actorId: input.actorId });
  const moved = await acts.transitionForPairing({
    deviceId: input.deviceId,
    to: 'free',
    actor: input.actor,
    actorId: input.actorId,
    reason: 'unpaired',
    updateId: `unpair-${workflowInfo().runId}`,
  });
  return { deviceId: input.deviceId, status: moved.ok ? 'free' : 'unchanged' };
}
