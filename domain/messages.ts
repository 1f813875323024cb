// Workflow IDs, inputs and messages (updates, queries) shared by the API, the activities and
// the workflows. Defining them once keeps both sides of every call in step.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor, DeviceStatus } from './device-status';
import type { Batch, NewBatch } from './model';
import type { PairingStatus } from './pairing';
import type { OtaReportMessage } from './ota';
import type { UpdateRequest, UpdateView } from './device-update';

// ---- Device lifecycle: one workflow per device, ID `device-<deviceId>` ----
export const deviceWorkflowId = (deviceId: string) => `device-${deviceId}`;

export interface LifecycleState {
  status: DeviceStatus;
  blocked: boolean;
  /** Bumped by every accepted change; orders the Postgres writes. */
  version: number;
}

export interface DeviceLifecycleInput {
  deviceId: string;
  batchId: string;
  companyId: string | null;
  model: string | null;
  /** Carried over by continueAsNew, or taken from Postgres when a workflow is (re)created. */
  state?: LifecycleState;
  /**
   * TEST-ONLY knob: continue-as-new after this many recorded changes in one run, instead of
   * when Temporal suggests it (thousands of events). Lets tests and replay fixtures cover the
   * roll-over; production code never sets it.
   */
  continueAsNewAfter?: number;
  /**
   * Set when a lost workflow (terminated, say) is started again: the run first reads the
   * device's state from Postgres, the system of record, before it takes any update.
   */
  restoreFromPostgres?: boolean;
  /** The last firmware update, carried over by continueAsNew (a repeated start of it is answered, not run again). */
  lastUpdate?: UpdateView;
}

export interface TransitionRequest {
  to: DeviceStatus;
  actor: Actor;
  actorId?: string | null;
  reason?: string | null;
}

export interface TransitionResult {
  deviceId: string;
  from: DeviceStatus;
  to: DeviceStatus;
  changed: boolean;
  version: number;
}

/** Failure type of an update whose change could not be written to Postgres (nothing changed). */
export const STATUS_NOT_RECORDED = 'status_not_recorded';

export const transitionUpdate = defineUpdate<TransitionResult, [TransitionRequest]>('transition');

/** Failure type of a change to `manufactured` refused because the broker does not have the device's login (nothing changed). */
export const CREDENTIALS_NOT_SYNCED = 'credentials_not_synced';

export interface BlockRequest {
  blocked: boolean;
  actor: Actor;
  actorId?: string | null;
}
export interface BlockResult {
  deviceId: string;
  blocked: boolean;
  changed: boolean;
}
/** Blocks (the broker refuses the device and cuts it off) or unblocks a device. */
export const setBlockedUpdate = defineUpdate<BlockResult, [BlockRequest]>('setBlocked');

/** Rotates the device's MQTT secret; answers the new generation (the API derives the secret: it never enters a history). */
export const rotateSecretUpdate = defineUpdate<{ deviceId: string; generation: number }, [{ actor: Actor; actorId?: string | null }]>('rotateSecret');

/** Starts a firmware update of the device (the lifecycle runs it: one at a time); a repeat of the same ID answers it as it is. */
export const startUpdateUpdate = defineUpdate<UpdateView, [UpdateRequest]>('startFirmwareUpdate');
/** Cancels the device's update if the device has not begun installing it; answers it as it ended. */
export const cancelUpdateUpdate = defineUpdate<UpdateView, [{ updateId: string; actorId: string | null }]>('cancelFirmwareUpdate');
export const firmwareUpdateQuery = defineQuery<UpdateView | null>('firmwareUpdate');
/** Failure types of a refused start or cancel. */
export const UPDATE_REFUSALS = { inProgress: 'update_in_progress', blocked: 'device_blocked', notReady: 'device_not_ready', notFound: 'update_not_found', tooLate: 'too_late_to_cancel' } as const;

/** A device's report of an update's step (`$rdm/ota`), routed by the bridge; one for another update is ignored. */
export const otaReportSignal = defineSignal<[OtaReportMessage & { at: number }]>('otaReport');

/** The bridge saw the device's first messages of a connection (it authenticated): reported, not decided. */
export const deviceConnectedSignal = defineSignal<[{ at: number }]>('deviceConnected');
export const lifecycleStateQuery = defineQuery<LifecycleState>('state');

// ---- Task queues ----
/**
 * Long fan-out activities (creating a batch's devices, starting their workflows, bulk changes)
 * run on a queue of their own with few slots, so that they never hold the activity slots that
 * device workflows and batch acceptance need on the main queue.
 */
export const fanoutTaskQueue = (taskQueue: string) => `${taskQueue}-fanout`;
/**
 * Device lifecycle workflows start on a queue of their own: a large batch starts thousands at
 * once, and their first workflow tasks would otherwise queue in front of a new batch's workflow
 * task (which is why batch creation fell back to 202 under load). Workflows started before this
 * queue existed keep running on the main queue, whose worker still runs them.
 */
export const deviceTaskQueue = (taskQueue: string) => `${taskQueue}-devices`;

// ---- Batch provisioning: ID `batch-<batchId>` ----
export const batchWorkflowId = (batchId: string) => `batch-${batchId}`;

export interface BatchProvisioningInput {
  batch: NewBatch;
  /** Resume point carried over by continueAsNew. */
  progress?: { devicesCreated: number; workflowsStarted: number; credentialsSynced?: number };
}

/** Sent with the start (update-with-start): answers once the batch row exists, so a 201 is never a lie. */
export const acceptBatchUpdate = defineUpdate<Batch>('accept');

// ---- Bulk status change of a batch's devices: ID `bulk-status-<operationId>` ----
export const bulkStatusWorkflowId = (operationId: string) => `bulk-status-${operationId}`;

export interface BulkStatusInput {
  operationId: string;
  batchId: string;
  to: DeviceStatus;
  actor: Actor;
  actorId: string | null;
  /** When absent, every device of the batch. */
  deviceIds?: string[];
  /** Resume point carried over by continueAsNew. */
  resume?: BulkStatusTally & { nextChunk: number };
}

export interface RefusedDevice {
  deviceId: string;
  code: string;
  message: string;
}

export interface BulkStatusTally {
  requested: number;
  changed: number;
  unchanged: number;
  refusedCount: number;
  refused: RefusedDevice[];
}

/** Refusals kept in detail per operation; the rest are counted only. */
export const MAX_REFUSED_DETAILS = 1000;

// ---- Pairing: one workflow per attempt, ID `pairing-<deviceId>` (one attempt per device at a time) ----
export const pairingWorkflowId = (deviceId: string) => `pairing-${deviceId}`;
/** Unpairing: ID `unpair-<deviceId>`; a second request meets the running one. */
export const unpairWorkflowId = (deviceId: string) => `unpair-${deviceId}`;

export interface PairingInput {
  deviceId: string;
  /** How long the device has to confirm, from acceptance (PAIRING_TIMEOUT_S). */
  timeoutS: number;
}

export interface PairingRequest {
  pairingId: string;
  userId: string;
}

export interface PairingView {
  id: string;
  deviceId: string;
  userId: string;
  status: PairingStatus;
  expiresAt: string;
}

export interface DeviceAnswer {
  pairingId: string;
  accept: boolean;
}

export interface CancelPairingRequest {
  pairingId: string;
  userId: string;
}

/** Sent with the start (update-with-start): answers once the attempt is checked and recorded (the workflow then moves the device to `pairing`), or refuses. */
export const requestPairingUpdate = defineUpdate<PairingView, [PairingRequest]>('requestPairing');
/** The device's answer, routed by the bridge (bridge/workflow-events.ts). */
export const deviceAnswerSignal = defineSignal<[DeviceAnswer]>('deviceAnswer');
/** The user cancels; answers with the attempt as it ended. */
export const cancelPairingUpdate = defineUpdate<PairingView, [CancelPairingRequest]>('cancelPairing');
export const pairingStateQuery = defineQuery<PairingView | null>('pairing');

export interface UnpairInput {
  deviceId: string;
  /** The owner being removed (the device is unpaired only from this owner). */
  ownerId: string;
  actor: Actor;
  actorId: string;
}

// ---- Sharing: one timer workflow per share with an end, ID `share-<shareId>` ----
export const shareExpiryWorkflowId = (shareId: string) => `share-${shareId}`;

export interface ShareExpiryInput {
  shareId: string;
  deviceId: string;
  expiresAt: string;
}

/** The share ended before its time (revoked, unpaired, or never recorded): the timer has nothing left to do. */
export const shareEndedSignal = defineSignal<[]>('shareEnded');
