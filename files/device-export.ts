// One device as the manufacturer's export sees it: the shape shared by devices.csv and the zip
// bundle, and the CSV layout (column order is a contract with the factory's tooling).

export interface DeviceExportRow {
  deviceId: string;
  batchId: string;
  batchName: string;
  status: string;
  secret: string;
  pairingCode: string;
  qrPayload: string;
  info: string | null;
  model: string | null;
  color: string | null;
  createdAt: Date;
  /** The broker this device connects to (MQTT_DEVICE_URL); null when the platform does not know it. */
  mqttUrl: string | null;
  /** The device's MQTT username (its Homie ID: domain/broker-identity.ts). */
  mqttUsername: string;
}

/** Where the device's QR image sits inside the bundle; also the CSV's qr_file column. */
export function qrFileName(deviceId: string): string {
  return `qr/${deviceId}.png`;
}

export const DEVICE_CSV_COLUMNS = [
  'device_id',
  'batch',
  'batch_id',
  'status',
  'secret',
  'pairing_code',
  'qr_file',
  'qr_payload',
  'info',
  'model',
  'color',
  'created_at',
  'mqtt_url',
  'mqtt_username',
] as const;

/** Values in DEVICE_CSV_COLUMNS order. */
export function deviceCsvValues(row: DeviceExportRow): (string | null)[] {
  return [
    row.deviceId,
    row.batchName,
    row.batchId,
    row.status,
    row.secret,
    row.pairingCode,
    qrFileName(row.deviceId),
    row.qrPayload,
    row.info,
    row.model,
    row.color,
    row.createdAt.toISOString(),
    row.mqttUrl,
    row.mqttUsername,
  ];
}
