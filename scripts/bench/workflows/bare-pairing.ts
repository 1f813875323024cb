// The bare path for the pairing benchmark: a workflow started by update-with-start whose update
// answers at once, and which then ends; no activity, no other workflow. The product's pairing rate
// reads as a ratio to it.
import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

export const ask = defineUpdate<string, [string]>('ask');

export async function benchBarePairing(): Promise<void> {
  let asked = false;
  setHandler(ask, (who) => {
    asked = true;
    return who;
  });
  await condition(() => asked);
}
