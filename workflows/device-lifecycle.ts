// The device lifecycle entity workflow: one per device, for the device's whole life.
// It holds the status machine; transitions arrive as updates whose validator refuses illegal
// ones before anything is written; each accepted change goes to Postgres (activity) and to the
// DeviceStatus search attribute (for the Temporal UI).
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { checkTransition } from '../domain/device-status';
import {
  lifecycleStateQuery,
  transitionUpdate,
  type DeviceLifecycleInput,
  type LifecycleState,
  type TransitionRequest,
} from '../domain/messages';
import { SA } from '../domain/search-attributes';

const { recordStatusChange } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  // Postgres is the system of record: keep trying through an outage rather than lose a change.
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

function refuseIfIllegal(state: LifecycleState, req: TransitionRequest): void {
  const check = checkTransition(state, req.to, req.actor);
  if (!check.ok) throw ApplicationFailure.nonRetryable(check.message, check.code);
}

export async function deviceLifecycle(input: DeviceLifecycleInput): Promise<void> {
  const state: LifecycleState = input.state ?? { status: 'new', blocked: false, version: 0 };

  setHandler(lifecycleStateQuery, () => ({ ...state }));

  setHandler(
    transitionUpdate,
    async (req) => {
      // Validators of updates delivered together all see the state before any handler ran:
      // check again now that the earlier handlers have changed it.
      refuseIfIllegal(state, req);
      const from = state.status;
      if (from === req.to) return { deviceId: input.deviceId, from, to: req.to, changed: false, version: state.version };
      state.status = req.to;
      state.version += 1;
      const version = state.version;
      upsertSearchAttributes([{ key: SA.DeviceStatus, value: req.to }]);
      await recordStatusChange({
        deviceId: input.deviceId,
        version,
        from,
        to: req.to,
        actor: req.actor,
        actorId: req.actorId ?? null,
        reason: req.reason ?? null,
        at: new Date().toISOString(), // workflow time: deterministic on replay
      });
      return { deviceId: input.deviceId, from, to: req.to, changed: true, version };
    },
    { validator: (req) => refuseIfIllegal(state, req) },
  );

  // An entity lives forever: roll the history over before it grows large.
  await condition(() => workflowInfo().continueAsNewSuggested && allHandlersFinished());
  await continueAsNew<typeof deviceLifecycle>({ ...input, state });
}
