// The shapes the API returns and the activities pass around. One definition, imported everywhere.
import type { DeviceStatus } from './device-status';

export type ProvisioningStatus = 'provisioning' | 'ready';

export interface Batch {
  id: string;
  name: string;
  count: number;
  info: string | null;
  color: string | null;
  model: string | null;
  companyId: string | null;
  provisioning: {
    status: ProvisioningStatus;
    devicesCreated: number;
    workflowsStarted: number;
    devicesReadyAt: string | null;
    readyAt: string | null;
  };
  createdAt: string;
}

export interface UpdatePolicy {
  mode: 'auto' | 'manual';
  time?: string;
  timezone?: string;
}

export interface Device {
  id: string;
  batchId: string;
  status: DeviceStatus;
  statusChangedAt: string;
  blocked: boolean;
  model: string | null;
  companyId: string | null;
  ownerId: string | null;
  online: boolean;
  lastSeenAt: string | null;
  firmwareVersion: string | null;
  updatePolicy: UpdatePolicy;
  createdAt: string;
}

export interface NewBatch {
  id: string;
  name: string;
  count: number;
  info: string | null;
  color: string | null;
  model: string | null;
  companyId: string | null;
  createdBy: string | null;
}

/** One accepted status change, as written to Postgres by the lifecycle workflow. */
export interface StatusChange {
  deviceId: string;
  version: number;
  from: DeviceStatus;
  to: DeviceStatus;
  actor: string;
  actorId: string | null;
  reason: string | null;
  at: string;
}
