// Realistic, deterministic export rows for tests and benchmarks: the same index always gives the
// same device, with credentials derived exactly as in production (domain/credentials.ts).
import { createHash } from 'node:crypto';
import { base32, CredentialDeriver } from '../domain/credentials';
import { DEVICE_ID_LENGTH } from '../domain/ids';
import { qrPayload } from '../domain/qr-payload';
import type { DeviceExportRow } from './device-export';

const deriver = new CredentialDeriver(Buffer.alloc(32, 7));
const CREATED_AT = new Date('2025-01-15T08:30:00.000Z');

export function syntheticRow(index: number): DeviceExportRow {
  const deviceId = base32(createHash('sha256').update(`device ${index}`).digest(), DEVICE_ID_LENGTH);
  const { secret, pairingCode } = deriver.device(deviceId);
  return {
    deviceId,
    batchId: '0123456789ABCDEF',
    batchName: 'Factory run, March',
    status: 'provisioned',
    secret,
    pairingCode,
    qrPayload: qrPayload(deviceId, pairingCode),
    info: index % 10 === 0 ? `line ${index % 7}, "shelf" B` : null,
    model: 'TH-200',
    color: index % 2 ? 'white' : 'black',
    createdAt: CREATED_AT,
    mqttUrl: null,
    mqttUsername: deviceId.toLowerCase(),
  };
}

export async function* syntheticRows(count: number): AsyncGenerator<DeviceExportRow> {
  for (let i = 0; i < count; i++) yield syntheticRow(i);
}
