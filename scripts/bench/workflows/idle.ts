// The bare path for the provisioning benchmark: a workflow that, like a device's lifecycle, runs
// its first task and then waits, and takes an update that only counts (no activity, no search
// attribute). Start and update rates of the product read as ratios to it.
import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

export const poke = defineUpdate<number, [number]>('poke');

export async function benchIdle(): Promise<void> {
  let pokes = 0;
  setHandler(poke, (n) => (pokes += n));
  await condition(() => pokes < 0);
}
