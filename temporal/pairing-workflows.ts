// Client-side calls on pairing (the API's POST/GET/DELETE /pairings and DELETE /devices/{id}/owner
// are a few lines each on top of these). Refusals come back as AppErrors with the contract's HTTP
// status: 404 unknown device, 403 wrong code, 429 too many wrong codes, 409 not pairable.
//
// The code is checked here, in Postgres, before any workflow: guesses (the only attack a pairing
// code has to stand) then cost no workflow each, are counted durably under the rate limit, and no
// code material ever enters a workflow history. Everything about the device's state is decided by
// the pairing workflow (workflows/pairing.ts), which serialises the requests for one device.
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Db } from '../db/knex';
import { checkPairingCode, getPairing, pairingFacts, type Pairing } from '../db/repositories/pairings';
import { sha256Hex } from '../domain/credentials';
import { AppError, ConflictError, ForbiddenError, NotFoundError, TooManyRequestsError } from '../domain/errors';
import { isDeviceId, newEntityId } from '../domain/ids';
import { cancelPairingUpdate, pairingWorkflowId, requestPairingUpdate, unpairWorkflowId, type PairingView, type UnpairInput } from '../domain/messages';
import { normalizePairingCode } from '../domain/pairing';
import { parseQrPayload } from '../domain/qr-payload';
import type { pairing } from '../workflows/pairing';
import type { unpairDevice } from '../workflows/unpair';
import { findApplicationFailure, toAppError } from './errors';

export interface PairingContext {
  temporal: Client;
  db: Db;
  taskQueue: string;
  /** PAIRING_TIMEOUT_S. */
  timeoutS: number;
}

export type PairingAsk = { userId: string } & ({ deviceId: string; code: string } | { qr: string });

/** The device and code of a request: given as they are, or read from the QR's text. */
function deviceAndCode(ask: PairingAsk): { deviceId: string; code: string } {
  if ('qr' in ask) {
    const p = parseQrPayload(ask.qr.trim());
    if (!p) throw new AppError(422, 'invalid_qr', 'not the text of a device QR code (RDM1:<deviceId>:<code>)');
    return { deviceId: p.deviceId, code: p.pairingCode };
  }
  return { deviceId: ask.deviceId.toUpperCase(), code: ask.code };
}

/**
 * Asks to pair: `{id, status: 'pending', expiresAt}` once the device is `pairing` and has been
 * asked to confirm, or a refusal. The same user asking again while the attempt runs gets it back.
 */
export async function requestPairing(ctx: PairingContext, ask: PairingAsk): Promise<PairingView> {
  const { deviceId, code } = deviceAndCode(ask);
  // A malformed ID is no device: counted like any unknown one (enumeration costs attempts too).
  const check = await checkPairingCode(ctx.db, { deviceId: isDeviceId(deviceId) ? deviceId : '-', userId: ask.userId, codeHash: sha256Hex(normalizePairingCode(code)) });
  if (!check.ok) {
    if (check.refusal === 'unknown_device') throw new NotFoundError('device', isDeviceId(deviceId) ? deviceId : undefined);
    if (check.refusal === 'wrong_pairing_code') throw new AppError(403, 'wrong_pairing_code', 'the pairing code does not match the device');
    if (check.refusal === 'too_many_attempts') throw new TooManyRequestsError(
      check.scope === 'device' ? 'too many wrong pairing codes for this device; try again later' : 'too many wrong pairing codes from this user; try again later',
      check.retryAfterS,
      'too_many_attempts',
    );
  }
  const request = { pairingId: newEntityId(), userId: ask.userId };
  const attempt = () =>
    ctx.temporal.workflow.executeUpdateWithStart(requestPairingUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation<typeof pairing>('pairing', {
        workflowId: pairingWorkflowId(deviceId),
        taskQueue: ctx.taskQueue,
        args: [{ deviceId, timeoutS: ctx.timeoutS }],
        // A running attempt is met (one per device at a time); a closed one leaves room for the next.
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      }),
    });
  try {
    try {
      return await attempt();
    } catch (err) {
      // Met an attempt in the moment it closed: the next request starts a new one.
      if (!closedUnderneath(err)) throw err;
      return await attempt();
    }
  } catch (err) {
    throw toAppError(err, `device '${deviceId}'`);
  }
}

/**
 * The request met a run in the moment it completed (its only requests were refused): the server
 * answers "not found" for an update it had not yet handed over, or this failure type for one it had.
 */
function closedUnderneath(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  return err instanceof WorkflowUpdateFailedError && findApplicationFailure(err)?.type === 'AcceptedUpdateCompletedWorkflow';
}

/** For GET /pairings/{id}: Postgres has every attempt that was accepted. */
export async function readPairing(db: Db, id: string): Promise<Pairing> {
  const p = await getPairing(db, id);
  if (!p) throw new NotFoundError('pairing', id);
  return p;
}

/** The user who asked cancels a pending attempt: the device goes back to `free`. A repeat answers the same. */
export async function cancelPairing(ctx: Pick<PairingContext, 'temporal' | 'db'>, a: { pairingId: string; userId: string }): Promise<Pairing> {
  const p = await readPairing(ctx.db, a.pairingId);
  if (p.userId !== a.userId) throw new ForbiddenError('only the user who asked may cancel a pairing');
  if (p.status !== 'pending') {
    if (p.status === 'cancelled') return p;
    throw new ConflictError('pairing_finished', `this pairing attempt is over: ${p.status}`);
  }
  try {
    const ended = await ctx.temporal.workflow.getHandle(pairingWorkflowId(p.deviceId)).executeUpdate(cancelPairingUpdate, { args: [a] });
    if (ended.status !== 'cancelled') throw new ConflictError('pairing_finished', `this pairing attempt is over: ${ended.status}`);
  } catch (err) {
    if (err instanceof AppError) throw err;
    // The workflow closed meanwhile: Postgres says how the attempt ended.
    if (!(err instanceof WorkflowNotFoundError)) throw toAppError(err, `pairing '${p.id}'`);
  }
  return readPairing(ctx.db, a.pairingId);
}

/**
 * Unpairs a device: by its owner (`asAdmin` false: the caller must be the owner) or an admin.
 * Answers once the device is `free`, has been told it has no owner, and the owner is cleared.
 */
export async function unpair(ctx: Pick<PairingContext, 'temporal' | 'db' | 'taskQueue'>, a: { deviceId: string; userId: string; asAdmin: boolean }): Promise<{ deviceId: string; status: 'free' | 'unchanged' }> {
  const facts = await pairingFacts(ctx.db, a.deviceId);
  if (!facts) throw new NotFoundError('device', a.deviceId);
  if (!a.asAdmin && facts.ownerId !== a.userId) throw new ForbiddenError('only the device\'s owner or an admin may unpair it');
  if (facts.ownerId === null) throw new ConflictError('not_paired', 'the device has no owner');
  const input: UnpairInput = { deviceId: a.deviceId, ownerId: facts.ownerId, actor: a.asAdmin ? 'admin' : 'system', actorId: a.userId };
  try {
    return await ctx.temporal.workflow.execute<typeof unpairDevice>('unpairDevice', {
      workflowId: unpairWorkflowId(a.deviceId),
      taskQueue: ctx.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowExecutionTimeout: '15 minutes',
    });
  } catch (err) {
    throw toAppError(err, `device '${a.deviceId}'`);
  }
}
