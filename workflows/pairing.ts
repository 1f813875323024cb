// One pairing attempt of one device (ID `pairing-<deviceId>`): started by update-with-start so the
// user is answered at once. The first request accepted is checked against Postgres and recorded,
// and answered; later requests meet this attempt (the same user gets it back, anyone else is
// refused), so of two users pairing at once exactly one wins. Then the workflow moves the device
// `free -> pairing` through its lifecycle workflow, asks the device, waits for its answer, the
// user's cancel or the deadline, and ends the attempt: `paired` (the user owns it, the device is
// told) or back to `free`.
import { ApplicationFailure, allHandlersFinished, condition, patched, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  cancelPairingUpdate,
  deviceAnswerSignal,
  pairingStateQuery,
  requestPairingUpdate,
  type DeviceAnswer,
  type PairingInput,
  type PairingRequest,
  type PairingView,
} from '../domain/messages';
import type { FinishedPairingStatus, PairingRefusal } from '../domain/pairing';

// Short Postgres reads and writes and MQTT publishes run as local activities (in the workflow
// task: no round trip through the server each); the lifecycle change waits on another workflow,
// so it is a regular activity. The user waits on the first ones (inside the update): bounded by a
// minute. Ending an attempt must happen, or the device stays `pairing`: retried for up to an hour.
const checkRetry = { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 12 } as const;
const endRetry = { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 200 } as const;
// The lifecycle update waits on the device workflow's own Postgres write: under load that takes
// more than a few seconds, and a retry before it answers only queues the same update again.
const checks = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', scheduleToCloseTimeout: '1 minute', retry: checkRetry });
const quickChecks = proxyLocalActivities<Activities>({ startToCloseTimeout: '5 seconds', scheduleToCloseTimeout: '1 minute', retry: checkRetry });
const endings = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', scheduleToCloseTimeout: '1 hour', retry: endRetry });
const quickEndings = proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds', scheduleToCloseTimeout: '1 hour', retry: endRetry });

const ID = /^[A-Za-z0-9_-]{1,64}$/;

export const PATCH_BLOCKED_NOT_PAIRED = 'blocked-device-not-paired';
/**
 * Patch: the user is answered once the attempt is checked and recorded; the device is moved
 * `free -> pairing` after, by the workflow, for as long as that takes. Before, the answer waited
 * on the lifecycle update, and under load an answer that gave up (the update still queued) could
 * leave the device `pairing` with no attempt to finish it.
 */
export const PATCH_ANSWER_BEFORE_MOVE = 'answer-before-lifecycle-move';

function refuse(code: PairingRefusal, message: string): never {
  throw ApplicationFailure.nonRetryable(message, code);
}

export async function pairing(input: PairingInput): Promise<PairingView | null> {
  let attempt: PairingView | null = null;
  let answer: DeviceAnswer | null = null;
  let cancelled = false;
  /** A request is being checked; the next waits (validators of requests delivered together all saw no attempt). */
  let checking = false;
  let tried = false;
  /** The attempt was answered before the device moved to `pairing` (PATCH_ANSWER_BEFORE_MOVE). */
  let moveAfterAnswer = false;

  setHandler(pairingStateQuery, () => (attempt ? { ...attempt } : null));

  setHandler(deviceAnswerSignal, (a) => {
    // An answer to another (older) attempt, or a repeat, changes nothing.
    if (attempt?.status === 'pending' && a.pairingId === attempt.id && answer === null) answer = a;
  });

  /** A request that meets an accepted attempt: the same user gets it back, anyone else is refused. */
  function meet(a: PairingView, req: PairingRequest): PairingView {
    if (a.userId === req.userId && a.status === 'pending') return { ...a };
    if (a.status === 'paired') refuse('already_paired', 'the device already has an owner');
    refuse('pairing_pending', 'another pairing of this device is in progress');
  }

  setHandler(
    requestPairingUpdate,
    async (req) => {
      while (checking) await condition(() => !checking);
      if (attempt) return meet(attempt, req);
      checking = true;
      try {
        const facts = await quickChecks.pairingFacts(input.deviceId);
        if (!facts) refuse('unknown_device', `device '${input.deviceId}' not found`);
        if (facts.blocked) refuse('device_blocked', 'the device is blocked: its credentials were revoked');
        if (facts.status === 'paired' || facts.ownerId !== null) refuse('already_paired', 'the device already has an owner');
        if (facts.status === 'pairing') refuse('pairing_pending', 'another pairing of this device is in progress');
        if (facts.status !== 'free') refuse('device_not_free', `the device is '${facts.status}', not 'free': it cannot be paired yet`);
        if (patched(PATCH_ANSWER_BEFORE_MOVE)) moveAfterAnswer = true;
        else {
          const moved = await checks.transitionForPairing({ deviceId: input.deviceId, to: 'pairing', actorId: req.userId, reason: `pairing ${req.pairingId}`, updateId: `${req.pairingId}-pairing` });
          if (!moved.ok) refuse(moved.code === 'device_blocked' ? 'device_blocked' : 'device_not_free', moved.message);
        }
        const now = Date.now(); // workflow time: deterministic on replay
        const view: PairingView = { id: req.pairingId, deviceId: input.deviceId, userId: req.userId, status: 'pending', expiresAt: new Date(now + input.timeoutS * 1000).toISOString() };
        await quickChecks.recordPairing({ ...view, createdAt: new Date(now).toISOString() });
        attempt = view;
        return { ...view };
      } finally {
        checking = false;
        tried = true;
      }
    },
    {
      validator: (req) => {
        if (!ID.test(req.pairingId) || !ID.test(req.userId)) refuse('unknown_device', 'malformed pairing request');
        if (attempt) meet(attempt, req);
      },
    },
  );

  setHandler(
    cancelPairingUpdate,
    async () => {
      const a = attempt!;
      if (a.status === 'pending') {
        cancelled = true;
        await condition(() => a.status !== 'pending');
      }
      return { ...a };
    },
    {
      validator: (req) => {
        if (!attempt || attempt.id !== req.pairingId) refuse('pairing_finished', 'this pairing attempt is over');
        if (attempt.userId !== req.userId) refuse('not_your_pairing', 'only the user who asked may cancel a pairing');
        if (attempt.status !== 'pending' && attempt.status !== 'cancelled') refuse('pairing_finished', `this pairing attempt is over: ${attempt.status}`);
      },
    },
  );

  // Until a request is accepted; when the only requests were refused, nothing started: done.
  await condition(() => attempt !== null || (tried && !checking && allHandlersFinished()));
  if (!attempt) return null;
  const a: PairingView = attempt;

  if (moveAfterAnswer) {
    // Durable: retried until the lifecycle answers. A refusal (an admin moved or blocked the
    // device since the check) ends the attempt; the device was never `pairing`.
    const moved = await endings.transitionForPairing({ deviceId: a.deviceId, to: 'pairing', actorId: a.userId, reason: `pairing ${a.id}`, updateId: `${a.id}-pairing` });
    if (!moved.ok) {
      await quickEndings.finishPairing({ pairingId: a.id, status: 'cancelled', at: new Date().toISOString() });
      a.status = 'cancelled';
      await condition(allHandlersFinished);
      return { ...a };
    }
  }

  try {
    await quickChecks.askDeviceToPair({ deviceId: a.deviceId, pairingId: a.id, expiresAt: a.expiresAt });
  } catch {
    // The broker is out of reach: the device cannot answer, and the deadline ends the attempt.
  }
  await condition(() => answer !== null || cancelled, Math.max(0, Date.parse(a.expiresAt) - Date.now()));
  // What settled it first; an answer and a cancel in the same moment: the answer was there first.
  const ans = answer as DeviceAnswer | null;
  let outcome: FinishedPairingStatus = ans ? (ans.accept ? 'paired' : 'rejected') : cancelled ? 'cancelled' : 'expired';
  const reason = `pairing ${a.id} ${outcome}`;

  // A device blocked while it was asked (its answer may have been on its way) is not given an owner.
  if (outcome === 'paired' && patched(PATCH_BLOCKED_NOT_PAIRED) && (await quickChecks.pairingFacts(a.deviceId))?.blocked) outcome = 'cancelled';

  if (outcome === 'paired') {
    const moved = await endings.transitionForPairing({ deviceId: a.deviceId, to: 'paired', actorId: a.userId, reason, updateId: `${a.id}-paired` });
    if (moved.ok) {
      await quickEndings.completePairing({ pairingId: a.id, deviceId: a.deviceId, userId: a.userId, at: new Date().toISOString() });
      await quickEndings.publishOwner({ deviceId: a.deviceId, ownerId: a.userId });
    } else {
      // An admin reset the device meanwhile (`pairing -> free`): nobody owns it.
      outcome = 'cancelled';
    }
  } else {
    // Refused here only when an admin moved the device meanwhile: it is no longer `pairing` anyway.
    await endings.transitionForPairing({ deviceId: a.deviceId, to: 'free', actorId: a.userId, reason, updateId: `${a.id}-free` });
  }
  if (outcome !== 'paired') await quickEndings.finishPairing({ pairingId: a.id, status: outcome, at: new Date().toISOString() });
  a.status = outcome;
  await condition(allHandlersFinished);
  return { ...a };
}
