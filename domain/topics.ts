// The MQTT topic tree (design/contract.md, "MQTT"): the one place that builds and parses topic
// names, imported by the firmware, the bridge and the API.
//
// Sensors follow Homie (4.0, and 3.0): homie/<homieId>/... . Management traffic Homie does not
// define lives under one extension attribute of the device, `$rdm`, so that a device's whole
// world is `homie/<homieId>/#` (one ACL pattern per device):
//
//   homie/<id>/$rdm/config/set        platform → device  desired settings, retained, QoS 1
//   homie/<id>/$rdm/config            device → platform  applied (reported) settings, retained
//   homie/<id>/$rdm/log               device → platform  one log record (JSON)
//   homie/<id>/$rdm/cmd/<reqId>       platform → device  a diagnostic command (JSON)
//   homie/<id>/$rdm/cmd/<reqId>/result device → platform the command's answer (JSON)
//   homie/<id>/$rdm/pairing/request   platform → device  {pairingId, expiresAt}, QoS 1, not retained
//   homie/<id>/$rdm/pairing/response  device → platform  {pairingId, accept}, QoS 1
//   homie/<id>/$rdm/owner             platform → device  {ownerId} or empty, retained, QoS 1
//   homie/<id>/$rdm/ota/set           platform → device  an update request or a cancel (domain/ota.ts), QoS 1
//   homie/<id>/$rdm/ota               device → platform  each step of an update, QoS 1, not retained
//
// Homie topic IDs are lowercase ([a-z0-9-]); device IDs are uppercase Crockford base32, which is
// case-insensitive by design, so the Homie ID is simply the device ID in lowercase.
import { DEVICE_ID_PATTERN } from './ids';

export const HOMIE_ROOT = 'homie';
export const RDM_EXTENSION = '$rdm';
/** Announced in `$extensions` (Homie 4 extension ID format: reverse domain:version:[homie versions]). */
export const RDM_EXTENSION_ID = 'io.rdm.management:1.0.0:[3.x;4.x]';

/**
 * Homie topic IDs: lowercase letters, digits, hyphens; not starting with a hyphen. At most 64
 * characters (Homie sets no limit; a bound keeps one device's stored names, and the rows and JSON
 * keys they become, small).
 */
export const HOMIE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
/**
 * A node's ID in a topic: a Homie ID, or (Homie 3 arrays) an element of an array node announced
 * as `name[]` in `$nodes`, spelt `name_<index>`.
 */
export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}(_\d{1,9})?$/;
/**
 * One level of an attribute's name after its `$` (`$fw/version`, `$stats/uptime`, Homie 3's
 * `$implementation/ota/enabled`): short and plain, so any attribute can be a JSON key in Postgres.
 */
const ATTRIBUTE_LEVEL = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ATTRIBUTE_LEVELS = 4;
/** Command request IDs: short, safe in a topic. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function homieId(deviceId: string): string {
  return deviceId.toLowerCase();
}

/**
 * The device ID a Homie ID stands for, or null when it is not one of ours. Only the lowercase
 * spelling is one: a broker ACL on `homie/<hid>/#` is case-sensitive, so accepting `homie/<HID>/`
 * too would let the bridge store what the ACL never let that device write.
 */
export function deviceIdOf(homieDeviceId: string): string | null {
  const id = homieDeviceId.toUpperCase();
  return id.toLowerCase() === homieDeviceId && DEVICE_ID_PATTERN.test(id) ? id : null;
}

/** Why parseTopic refused a topic, when a caller counts refusals by reason: its device ID is not lowercase. */
export function isMiscasedDeviceTopic(topic: string): boolean {
  const parts = topic.split('/', 3);
  const hid = parts[1];
  return parts[0] === HOMIE_ROOT && hid !== undefined && hid !== hid.toLowerCase() && deviceIdOf(hid.toLowerCase()) !== null;
}

const base = (deviceId: string) => `${HOMIE_ROOT}/${homieId(deviceId)}`;

export const topics = {
  device: base,
  /** Everything of one device (its ACL, a subscription that sees all of it). */
  deviceAll: (deviceId: string) => `${base(deviceId)}/#`,
  deviceAttribute: (deviceId: string, attr: string) => `${base(deviceId)}/$${attr}`,
  state: (deviceId: string) => `${base(deviceId)}/$state`,
  nodeAttribute: (deviceId: string, node: string, attr: string) => `${base(deviceId)}/${node}/$${attr}`,
  property: (deviceId: string, node: string, property: string) => `${base(deviceId)}/${node}/${property}`,
  propertyAttribute: (deviceId: string, node: string, property: string, attr: string) => `${base(deviceId)}/${node}/${property}/$${attr}`,
  set: (deviceId: string, node: string, property: string) => `${base(deviceId)}/${node}/${property}/set`,
  configDesired: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/config/set`,
  configReported: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/config`,
  log: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/log`,
  command: (deviceId: string, requestId: string) => `${base(deviceId)}/${RDM_EXTENSION}/cmd/${requestId}`,
  commandResult: (deviceId: string, requestId: string) => `${base(deviceId)}/${RDM_EXTENSION}/cmd/${requestId}/result`,
  pairingRequest: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/pairing/request`,
  pairingResponse: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/pairing/response`,
  owner: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/owner`,
  otaSet: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/ota/set`,
  otaReport: (deviceId: string) => `${base(deviceId)}/${RDM_EXTENSION}/ota`,
  /** The running firmware version (Homie 3 `$fw/version`, Homie 4 through the legacy-firmware extension), retained. */
  firmwareVersion: (deviceId: string) => `${base(deviceId)}/$fw/version`,
};

/** What the bridge subscribes to (before any `$share/<group>/` prefix): every device's traffic. */
export const ALL_DEVICES_FILTER = `${HOMIE_ROOT}/+/#`;
/** Subscriptions of one device's firmware: set commands, desired config, diagnostic commands, pairing requests, its owner, OTA requests. */
export function deviceInboundFilters(deviceId: string): string[] {
  return [
    `${base(deviceId)}/+/+/set`,
    topics.configDesired(deviceId),
    `${base(deviceId)}/${RDM_EXTENSION}/cmd/+`,
    topics.pairingRequest(deviceId),
    topics.owner(deviceId),
    topics.otaSet(deviceId),
  ];
}

/** MQTT 5 shared subscription: the broker hands each message to one member of the group. */
export function sharedFilter(group: string, filter: string): string {
  return `$share/${group}/${filter}`;
}

export type ParsedTopic =
  | { kind: 'device-attribute'; deviceId: string; attribute: string } // "$state", "$fw/version", "$stats/uptime"
  | { kind: 'node-attribute'; deviceId: string; node: string; attribute: string }
  | { kind: 'property-attribute'; deviceId: string; node: string; property: string; attribute: string }
  | { kind: 'value'; deviceId: string; node: string; property: string }
  | { kind: 'set'; deviceId: string; node: string; property: string }
  | { kind: 'config-desired'; deviceId: string }
  | { kind: 'config-reported'; deviceId: string }
  | { kind: 'log'; deviceId: string }
  | { kind: 'command'; deviceId: string; requestId: string }
  | { kind: 'command-result'; deviceId: string; requestId: string }
  | { kind: 'pairing-request'; deviceId: string }
  | { kind: 'pairing-response'; deviceId: string }
  | { kind: 'owner'; deviceId: string }
  | { kind: 'ota-set'; deviceId: string }
  | { kind: 'ota-report'; deviceId: string };

/**
 * Classifies a topic of the tree above; null for anything else (another root, a foreign device
 * ID, a malformed level). Pure string work: the bridge calls it for every message.
 */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts.length < 3 || parts[0] !== HOMIE_ROOT) return null;
  const deviceId = deviceIdOf(parts[1]!);
  if (!deviceId) return null;
  const p2 = parts[2]!;
  if (p2 === RDM_EXTENSION) {
    const rest = parts.slice(3);
    if (rest[0] === 'config' && rest.length === 1) return { kind: 'config-reported', deviceId };
    if (rest[0] === 'config' && rest.length === 2 && rest[1] === 'set') return { kind: 'config-desired', deviceId };
    if (rest[0] === 'log' && rest.length === 1) return { kind: 'log', deviceId };
    if (rest[0] === 'owner' && rest.length === 1) return { kind: 'owner', deviceId };
    if (rest[0] === 'pairing' && rest.length === 2 && rest[1] === 'request') return { kind: 'pairing-request', deviceId };
    if (rest[0] === 'pairing' && rest.length === 2 && rest[1] === 'response') return { kind: 'pairing-response', deviceId };
    if (rest[0] === 'ota' && rest.length === 1) return { kind: 'ota-report', deviceId };
    if (rest[0] === 'ota' && rest.length === 2 && rest[1] === 'set') return { kind: 'ota-set', deviceId };
    if (rest[0] === 'cmd' && rest.length >= 2 && rest.length <= 3 && REQUEST_ID_PATTERN.test(rest[1]!)) {
      if (rest.length === 2) return { kind: 'command', deviceId, requestId: rest[1]! };
      if (rest[2] === 'result') return { kind: 'command-result', deviceId, requestId: rest[1]! };
    }
    return null;
  }
  if (p2.startsWith('$')) {
    const levels = parts.slice(2);
    levels[0] = p2.slice(1);
    if (levels.length > MAX_ATTRIBUTE_LEVELS || !levels.every((l) => ATTRIBUTE_LEVEL.test(l))) return null;
    return { kind: 'device-attribute', deviceId, attribute: parts.slice(2).join('/') };
  }
  if (!NODE_ID_PATTERN.test(p2)) return null;
  const node = p2;
  if (parts.length === 3) return null;
  const p3 = parts[3]!;
  if (p3.startsWith('$')) return parts.length === 4 && ATTRIBUTE_LEVEL.test(p3.slice(1)) ? { kind: 'node-attribute', deviceId, node, attribute: p3 } : null;
  if (!HOMIE_ID_PATTERN.test(p3)) return null;
  const property = p3;
  if (parts.length === 4) return { kind: 'value', deviceId, node, property };
  if (parts.length !== 5) return null;
  const p4 = parts[4]!;
  if (p4 === 'set') return { kind: 'set', deviceId, node, property };
  if (p4.startsWith('$') && ATTRIBUTE_LEVEL.test(p4.slice(1))) return { kind: 'property-attribute', deviceId, node, property, attribute: p4 };
  return null;
}
