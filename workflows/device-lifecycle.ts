// The device lifecycle entity workflow: one per device, for the device's whole life.
// It holds the status machine; transitions arrive as updates whose validator refuses illegal
// ones before anything is written; each accepted change goes to Postgres (activity) first, and
// only once Postgres has it to the workflow's state and the DeviceStatus search attribute, so
// Temporal never claims a status Postgres does not have.
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { Activities } from '../activities';
import { checkTransition } from '../domain/device-status';
import {
  cancelUpdateUpdate,
  CREDENTIALS_NOT_SYNCED,
  deviceConnectedSignal,
  firmwareUpdateQuery,
  lifecycleStateQuery,
  otaReportSignal,
  startUpdateUpdate,
  UPDATE_REFUSALS,
  rotateSecretUpdate,
  setBlockedUpdate,
  STATUS_NOT_RECORDED,
  transitionUpdate,
  type DeviceLifecycleInput,
  type LifecycleState,
  type TransitionRequest,
  type TransitionResult,
} from '../domain/messages';
import type { StatusChange } from '../domain/model';
import { isFinishedUpdate, type UpdateView } from '../domain/device-update';
import { isCancellableOtaState, type OtaReportMessage } from '../domain/ota';
import { runDeviceUpdate, writeUpdate, type RunningUpdate } from './device-update';
import { SA } from '../domain/search-attributes';

/** Patch: record in Postgres before changing state; a change Postgres refuses rejects the update. */
export const PATCH_RECORD_FIRST = 'record-status-before-state';

const { recordStatusChange } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  // Bounded: the caller of the update waits for it. Through a short Postgres outage the write
  // goes through; a longer one rejects the update and leaves the device as it was.
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 20 },
});

/**
 * Patch: the status write runs as a local activity, in the workflow task that runs the update:
 * one activity task and one workflow task fewer per change than a regular activity (a pairing
 * makes two changes while its user waits). Same timeouts and retries; beyond the SDK's local retry
 * threshold a retry waits on a timer, so a long Postgres outage still bounds the update.
 */
export const PATCH_LOCAL_STATUS_WRITE = 'status-write-local';

const { recordStatusChange: recordStatusChangeLocally } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 20 },
});

/** Patch: a device goes `manufactured` only once the broker has its login (activities/broker-credentials.ts). */
export const PATCH_CREDENTIALS_BEFORE_SHIPPING = 'credentials-before-manufactured';
/** Patch: the first authenticated connection of a `manufactured` device makes it `free`. */
export const PATCH_FIRST_CONNECTION_FREES = 'first-connection-frees';

// The broker's side of the device: bounded, as a caller waits (the API's block, rotate, status).
const { ensureDeviceCredentials, setDeviceBlocked, rotateDeviceSecret } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
});

const { readLifecycleState } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '5 minutes',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 30 },
});

/**
 * The write was refused (rolled back, nothing landed), not lost. A regular activity's failure says
 * so by its retry state; a local activity's reaches the workflow as the activity's own
 * (non-retryable) ApplicationFailure.
 */
function refusedOutright(err: unknown): boolean {
  if (err instanceof ActivityFailure) return err.retryState === RetryState.NON_RETRYABLE_FAILURE;
  return err instanceof ApplicationFailure && err.nonRetryable === true;
}

/** Statuses in which a device runs firmware that can be updated (it has been flashed and may be online). */
const UPDATABLE: readonly LifecycleState['status'][] = ['manufactured', 'free', 'pairing', 'paired'];

const viewOf = (u: RunningUpdate | UpdateView): UpdateView => ({ id: u.id, deviceId: u.deviceId, releaseId: u.releaseId, version: u.version, status: u.status, step: u.step, progress: u.progress, error: u.error });

function refuseIfIllegal(state: LifecycleState, req: TransitionRequest): void {
  const check = checkTransition(state, req.to, req.actor);
  if (!check.ok) throw ApplicationFailure.nonRetryable(check.message, check.code);
}

export async function deviceLifecycle(input: DeviceLifecycleInput): Promise<void> {
  const { restoreFromPostgres, ...carried } = input;
  let state: LifecycleState = input.state ?? { status: 'new', blocked: false, version: 0 };
  /** False until a re-created run has read its state from Postgres (see restoreFromPostgres). */
  let restored = !restoreFromPostgres;
  /** Handlers writing a change right now; a new-style handler waits until it is the only one. */
  let writing = 0;
  let changesThisRun = 0;

  setHandler(lifecycleStateQuery, () => ({ ...state }));

  const change = (req: TransitionRequest, from: LifecycleState['status'], version: number): StatusChange => ({
    deviceId: input.deviceId,
    version,
    from,
    to: req.to,
    actor: req.actor,
    actorId: req.actorId ?? null,
    reason: req.reason ?? null,
    at: new Date().toISOString(), // workflow time: deterministic on replay
  });

  /** Before PATCH_RECORD_FIRST: state first, then Postgres. Kept so that older histories replay. */
  async function stateFirst(req: TransitionRequest): Promise<TransitionResult> {
    refuseIfIllegal(state, req);
    const from = state.status;
    if (from === req.to) return { deviceId: input.deviceId, from, to: req.to, changed: false, version: state.version };
    state.status = req.to;
    state.version += 1;
    const version = state.version;
    upsertSearchAttributes([{ key: SA.DeviceStatus, value: req.to }]);
    writing++;
    try {
      await recordStatusChange(change(req, from, version));
    } finally {
      writing--;
    }
    changesThisRun++;
    return { deviceId: input.deviceId, from, to: req.to, changed: true, version };
  }

  /** `onlyFrom`: do nothing unless the device still has that status once it is this change's turn. */
  async function recordFirst(req: TransitionRequest, onlyFrom?: LifecycleState['status']): Promise<TransitionResult> {
    // One change at a time: each is checked against, and numbered after, the one before it.
    // (Validators of updates delivered together all saw the state before any of them ran.)
    await condition(() => restored);
    while (writing > 0) await condition(() => writing === 0);
    writing++;
    try {
      if (onlyFrom !== undefined && state.status !== onlyFrom) return { deviceId: input.deviceId, from: state.status, to: state.status, changed: false, version: state.version };
      refuseIfIllegal(state, req);
      const from = state.status;
      if (from === req.to) return { deviceId: input.deviceId, from, to: req.to, changed: false, version: state.version };
      const version = state.version + 1;
      if (req.to === 'manufactured' && patched(PATCH_CREDENTIALS_BEFORE_SHIPPING)) {
        // A shipped device must be able to connect: its login goes to the broker first (usually
        // the batch already put it there, and this finds nothing to do).
        try {
          await ensureDeviceCredentials(input.deviceId);
        } catch (err) {
          throw ApplicationFailure.create({
            type: CREDENTIALS_NOT_SYNCED,
            message: `the broker could not be given the device's credentials; the device stays '${from}'`,
            nonRetryable: true,
            cause: err instanceof Error ? err : undefined,
          });
        }
      }
      try {
        await (patched(PATCH_LOCAL_STATUS_WRITE) ? recordStatusChangeLocally : recordStatusChange)(change(req, from, version));
      } catch (err) {
        // A refused write (non-retryable) rolled back: nothing happened. Attempts that ran out
        // may have committed unseen, so that version number is spent: the next change gets a
        // higher one and overwrites whatever landed.
        if (!refusedOutright(err)) state.version = version;
        throw ApplicationFailure.create({
          type: STATUS_NOT_RECORDED,
          message: `the change to '${req.to}' could not be recorded; the device stays '${from}'`,
          nonRetryable: true,
          cause: err instanceof Error ? err : undefined,
        });
      }
      state.status = req.to;
      state.version = version;
      upsertSearchAttributes([{ key: SA.DeviceStatus, value: req.to }]);
      changesThisRun++;
      return { deviceId: input.deviceId, from, to: req.to, changed: true, version };
    } finally {
      writing--;
    }
  }

  setHandler(transitionUpdate, (req) => (patched(PATCH_RECORD_FIRST) ? recordFirst(req) : stateFirst(req)), {
    // Before a re-created run has its state, the handler does the checking.
    validator: (req) => {
      if (restored) refuseIfIllegal(state, req);
    },
  });

  /** One broker-side change at a time, after any status change in progress (they share `writing`). */
  async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await condition(() => restored);
    while (writing > 0) await condition(() => writing === 0);
    writing++;
    try {
      return await fn();
    } finally {
      writing--;
    }
  }

  setHandler(setBlockedUpdate, (req) =>
    exclusive(async () => {
      // Postgres and the broker first (idempotent, so also when nothing changes), then the state.
      await setDeviceBlocked({ deviceId: input.deviceId, blocked: req.blocked });
      const changed = state.blocked !== req.blocked;
      state.blocked = req.blocked;
      return { deviceId: input.deviceId, blocked: req.blocked, changed };
    }),
  );

  setHandler(rotateSecretUpdate, () =>
    exclusive(async () => {
      // The rotation's ID makes a retried activity apply it once.
      const { generation } = await rotateDeviceSecret({ deviceId: input.deviceId, rotationId: uuid4() });
      return { deviceId: input.deviceId, generation };
    }),
  );

  // ---- Firmware updates (workflows/device-update.ts): one at a time, run by the main loop below.
  let update: RunningUpdate | null = null;
  let lastUpdate: UpdateView | null = input.lastUpdate ?? null;
  const reports: (OtaReportMessage & { at: number })[] = [];
  let cancelRequested = false;
  /** A start is being recorded: another one waits its turn (and is refused). */
  let starting = false;
  const running = () => update !== null && !isFinishedUpdate(update.status);

  setHandler(firmwareUpdateQuery, () => (update ? viewOf(update) : lastUpdate));

  setHandler(otaReportSignal, (r) => {
    // A report of another (older) update, or with none running, changes nothing.
    if (update && running() && r.updateId === update.id) reports.push(r);
  });

  setHandler(
    startUpdateUpdate,
    async (req) => {
      const known = update ?? lastUpdate;
      if (known && known.id === req.updateId) return viewOf(known);
      // Validators of updates delivered together all saw none running: the first one wins.
      if (running() || starting) throw ApplicationFailure.nonRetryable('another update of this device is in progress', UPDATE_REFUSALS.inProgress);
      const next: RunningUpdate = { id: req.updateId, deviceId: input.deviceId, releaseId: req.releaseId, version: req.version, status: 'queued', step: null, progress: null, error: null, req };
      // Recorded before it can run (and before the answer), so the runner's writes come after it
      // and what the caller is told is what GET shows.
      starting = true;
      try {
        await writeUpdate(input.deviceId, next, { fromVersion: null, finished: false });
      } finally {
        starting = false;
      }
      if (update) lastUpdate = viewOf(update);
      update = next;
      reports.length = 0;
      cancelRequested = false;
      return viewOf(next);
    },
    {
      validator: (req) => {
        const known = update ?? lastUpdate;
        if (known && known.id === req.updateId) return;
        if (state.blocked) throw ApplicationFailure.nonRetryable('the device is blocked: it cannot be reached', UPDATE_REFUSALS.blocked);
        if (!UPDATABLE.includes(state.status)) throw ApplicationFailure.nonRetryable(`the device is '${state.status}': it runs no firmware to update yet`, UPDATE_REFUSALS.notReady);
        if (running() || starting) throw ApplicationFailure.nonRetryable('another update of this device is in progress', UPDATE_REFUSALS.inProgress);
      },
    },
  );

  setHandler(
    cancelUpdateUpdate,
    async () => {
      const u = update!;
      if (!isFinishedUpdate(u.status)) {
        cancelRequested = true;
        await condition(() => isFinishedUpdate(u.status));
      }
      return viewOf(u);
    },
    {
      validator: ({ updateId }) => {
        const known = update ?? lastUpdate;
        if (!known || known.id !== updateId) throw ApplicationFailure.nonRetryable(`no update '${updateId}' of this device is running`, UPDATE_REFUSALS.notFound);
        if (!isFinishedUpdate(known.status) && known.step !== null && !isCancellableOtaState(known.step)) {
          throw ApplicationFailure.nonRetryable(`the device is already '${known.step}': too late to cancel`, UPDATE_REFUSALS.tooLate);
        }
      },
    },
  );

  setHandler(deviceConnectedSignal, async () => {
    // The bridge only reports every connection; whether it changes anything is decided here.
    if (!patched(PATCH_FIRST_CONNECTION_FREES)) return;
    if (state.status !== 'manufactured' || state.blocked) return;
    // A failed write leaves the device `manufactured`: its next connection tries again.
    await recordFirst({ to: 'free', actor: 'system', reason: 'first authenticated connection' }, 'manufactured').catch(() => undefined);
  });

  if (restoreFromPostgres) {
    // Re-created after the previous run was lost: Postgres knows the status. Updates that
    // arrive meanwhile wait in the handler (handlers must exist in the first activation).
    state = await readLifecycleState(input.deviceId);
    upsertSearchAttributes([{ key: SA.DeviceStatus, value: state.status }]);
    restored = true;
  }

  // An entity lives forever: roll the history over before it grows large.
  const rollOver = () => workflowInfo().continueAsNewSuggested || (input.continueAsNewAfter !== undefined && changesThisRun >= input.continueAsNewAfter);
  const queued = () => update !== null && update.status === 'queued';
  for (;;) {
    // An update waits here until its turn; the history rolls over between updates, never during one.
    await condition(() => queued() || (rollOver() && allHandlersFinished()));
    if (!queued()) break;
    await runDeviceUpdate({ deviceId: input.deviceId, update: update!, reports, cancelRequested: () => cancelRequested, blocked: () => state.blocked });
  }
  await continueAsNew<typeof deviceLifecycle>({ ...carried, state, ...(update ? { lastUpdate: viewOf(update) } : lastUpdate ? { lastUpdate } : {}) });
}
