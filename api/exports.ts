// The rows of a batch's manufacturer download: each device with its derived credentials.
import type { CredentialDeriver } from '../domain/credentials';
import type { Batch } from '../domain/model';
import { qrPayload } from '../domain/qr-payload';
import type { Db } from '../db/knex';
import { streamBatchDevices } from '../db/repositories/devices';
import type { DeviceExportRow } from '../files/device-export';

export async function* batchExportRows(db: Db, credentials: CredentialDeriver, batch: Batch, mqttUrl: string | null): AsyncGenerator<DeviceExportRow> {
  for await (const d of streamBatchDevices(db, batch.id)) {
    const c = credentials.device(d.id, d.secret_generation);
    yield {
      deviceId: d.id,
      batchId: batch.id,
      batchName: batch.name,
      status: d.status,
      secret: c.secret,
      pairingCode: c.pairingCode,
      qrPayload: qrPayload(d.id, c.pairingCode),
      info: batch.info,
      model: d.model,
      color: batch.color,
      createdAt: d.created_at,
      mqttUrl,
    };
  }
}
