// The bare path for the provisioning benchmark's start rate: a workflow that, like a device's
// lifecycle, runs its first task and then waits. No activities, no state.
import { condition, defineSignal, setHandler } from '@temporalio/workflow';

export const wake = defineSignal('wake');

export async function benchIdle(): Promise<void> {
  let woken = false;
  setHandler(wake, () => void (woken = true));
  await condition(() => woken);
}
