// What the audit log records: one name per kind of act. Details never carry a secret (a token,
// a password, a device secret): at most the ID of what was made or changed.

export const AUDIT_ACTIONS = [
  'batch.created',
  'batch.exported', // devices.csv or bundle.zip: the device credentials left the platform
  'device.qr_exported',
  'device.status_changed',
  'batch.status_changed', // bulk
  'device.sensor_set',
  'device.config_changed',
  'device.command_sent',
  'alert_rule.created',
  'alert_rule.deleted',
  'user.created',
  'user.password_changed',
  'company.created',
  'participation.set',
  'participation.removed',
  'token.created',
  'token.revoked',
  'device.paired',
  'device.unpaired',
  'device.shared',
  'device.share_ended',
  'property_access.set',
  'property_access.removed',
  'device.blocked',
  'device.unblocked',
  'device.secret_rotated',
  'device.update_started',
  'firmware.uploaded',
  'firmware.promoted',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEvent {
  action: AuditAction;
  companyId?: string | null;
  deviceId?: string | null;
  batchId?: string | null;
  target?: { type: string; id: string };
  details?: Record<string, unknown>;
}
