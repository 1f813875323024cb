// What a device's QR code says. `RDM1:<deviceId>:<pairingCode>` uses only characters of the QR
// alphanumeric mode (uppercase Crockford base32 and ':'), so the code stays at version 2 and
// prints small. A pairing app reads the device ID and the pairing code (proof that the user holds
// the device) and calls POST /api/v1/pairings. The MQTT secret is never in the QR: a label can be
// photographed, the flashed secret cannot.
import { DEVICE_ID_PATTERN } from './ids';

export const QR_PREFIX = 'RDM1';

export function qrPayload(deviceId: string, pairingCode: string): string {
  return `${QR_PREFIX}:${deviceId}:${pairingCode}`;
}

export function parseQrPayload(text: string): { deviceId: string; pairingCode: string } | null {
  const [prefix, deviceId, pairingCode, ...rest] = text.split(':');
  if (prefix !== QR_PREFIX || rest.length > 0 || !deviceId || !pairingCode) return null;
  if (!DEVICE_ID_PATTERN.test(deviceId)) return null;
  return { deviceId, pairingCode };
}
