// Device credentials and API tokens.
//
// A device's MQTT secret and its pairing code are *derived*: HMAC(platform key, device ID,
// generation). The database keeps only their SHA-256, so a database dump alone reveals no
// credential, and the manufacturer's CSV can still be produced on demand without ever storing a
// plain secret. SHA-256 (not a slow KDF) is enough because every secret carries >= 50 random
// bits from the key: there is nothing to brute-force from a dictionary.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CROCKFORD } from './ids';

/** RFC 4648-style bit packing onto the Crockford alphabet. */
export function base32(bytes: Uint8Array, chars: number): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      bits -= 5;
      out += CROCKFORD[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
    if (out.length >= chars) break;
  }
  if (out.length < chars) throw new Error(`not enough bytes for ${chars} base32 characters`);
  return out;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export const DEVICE_SECRET_LENGTH = 26; // 130 bits
export const PAIRING_CODE_LENGTH = 10; // 50 bits: printed on the label, typed by hand if the QR is unreadable

export interface DeviceCredentials {
  secret: string;
  secretHash: string;
  pairingCode: string;
  pairingCodeHash: string;
}

export class CredentialDeriver {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new Error('the device secret key must be at least 32 bytes');
  }

  /** Short public fingerprint of the key, stored so that processes started with another key refuse to run. */
  fingerprint(): string {
    return createHash('sha256').update('rdm-key-fingerprint').update(this.key).digest('hex').slice(0, 16);
  }

  private derive(purpose: string, deviceId: string, generation: number, chars: number): string {
    const mac = createHmac('sha256', this.key).update(`${purpose}\0${deviceId}\0${generation}`).digest();
    return base32(mac, chars);
  }

  /** The device's MQTT password (its CSV `secret`) of that generation. */
  deviceSecret(deviceId: string, generation = 1): string {
    return this.derive('mqtt-secret', deviceId, generation, DEVICE_SECRET_LENGTH);
  }

  /** The MQTT password of one of the platform's own clients (domain/broker-identity.ts). */
  platformPassword(client: string): string {
    return this.derive('mqtt-platform', client, 0, DEVICE_SECRET_LENGTH);
  }

  /**
   * The bridges' MQTT shared-subscription group: the configured name and a key-derived suffix.
   * Mosquitto's acl_file grants any subscription and filters deliveries, so a device that joined
   * the bridges' group would be handed a share of the stream and then denied it: those messages
   * would be lost. A group name no device can know keeps devices out of it.
   */
  shareGroup(base: string): string {
    return `${base}-${this.derive('mqtt-share-group', base, 0, 16).toLowerCase()}`;
  }

  /** The MAC of a time-limited download link (ota/download-url.ts): only the platform can make one. */
  downloadMac(payload: string): string {
    return createHmac('sha256', this.key).update(`firmware-download\0${payload}`).digest('base64url');
  }

  device(deviceId: string, generation = 1): DeviceCredentials {
    const secret = this.deviceSecret(deviceId, generation);
    // The pairing code is printed on the label: a secret rotation must not change it.
    const pairingCode = this.derive('pairing-code', deviceId, 1, PAIRING_CODE_LENGTH);
    return { secret, secretHash: sha256Hex(secret), pairingCode, pairingCodeHash: sha256Hex(pairingCode) };
  }
}

export function newDeviceSecretKey(): string {
  return randomBytes(32).toString('hex');
}

/** API tokens: `rdm_` + 255 random bits. The prefix lets secret scanners recognise a leaked one. */
export const TOKEN_PREFIX = 'rdm_';
export function newApiToken(): string {
  return TOKEN_PREFIX + base32(randomBytes(32), 51);
}

/** Sign-in sessions: `rdms_` + 255 random bits; a prefix of their own tells them from API tokens. */
export const SESSION_PREFIX = 'rdms_';
export function newSessionToken(): string {
  return SESSION_PREFIX + base32(randomBytes(32), 51);
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
