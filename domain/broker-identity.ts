// Who may connect to the broker and what each may do (design/contract.md "MQTT: broker identity"):
// the one definition behind the Mosquitto ACL file, the dynamic-security roles, the HTTP auth
// endpoint and the aedes hooks.
//
// A device's MQTT username is its Homie ID (the device ID in lowercase), so one rule covers every
// device: `homie/<username>/#` (Mosquitto: `pattern readwrite homie/%u/#`). It is the only spelling
// the bridge accepts in a topic (domain/topics.ts), so what the broker lets a device write is
// exactly what the bridge will store. The client ID is free.
import { deviceIdOf, HOMIE_ROOT, homieId } from './topics';

export const deviceMqttUsername = (deviceId: string): string => homieId(deviceId);
/** The device a username stands for, or null (a platform client, or nobody). */
export const deviceIdOfUsername = (username: string): string | null => deviceIdOf(username);

export type Access = 'read' | 'write';
export interface TopicRight {
  access: Access;
  /** An MQTT filter; a subscription must lie inside it, a publish must match it. */
  filter: string;
}

/**
 * The platform's own clients, each with the rights it needs. Their passwords are derived from the
 * platform key (CredentialDeriver.platformPassword), so nothing new is stored.
 */
export const PLATFORM_CLIENTS = {
  /** Sends sets, commands and desired configuration; waits for the device's answers. */
  'rdm-api': [
    { access: 'read', filter: `${HOMIE_ROOT}/#` },
    { access: 'write', filter: `${HOMIE_ROOT}/+/+/+/set` },
    { access: 'write', filter: `${HOMIE_ROOT}/+/$rdm/#` },
  ],
  /** Reads every device (through its shared subscription); re-sends pending desired configuration. */
  'rdm-bridge': [
    { access: 'read', filter: `${HOMIE_ROOT}/#` },
    { access: 'write', filter: `${HOMIE_ROOT}/+/$rdm/config/set` },
  ],
  /** Workflows' activities that talk to devices (pairing, OTA, owner). */
  'rdm-worker': [
    { access: 'read', filter: `${HOMIE_ROOT}/#` },
    { access: 'write', filter: `${HOMIE_ROOT}/+/$rdm/#` },
  ],
  /** Operators' and tests' tools (watching, clearing retained messages, simulating devices without credentials). */
  'rdm-tools': [
    { access: 'read', filter: `${HOMIE_ROOT}/#` },
    { access: 'write', filter: `${HOMIE_ROOT}/#` },
  ],
} as const satisfies Record<string, readonly TopicRight[]>;
export type PlatformClient = keyof typeof PLATFORM_CLIENTS;
export const PLATFORM_CLIENT_NAMES = Object.keys(PLATFORM_CLIENTS) as PlatformClient[];

export function isPlatformClient(username: string): username is PlatformClient {
  return Object.prototype.hasOwnProperty.call(PLATFORM_CLIENTS, username);
}

const SHARE = '$share';

/** True when `topic` (no wildcards) matches the MQTT filter. `$`-topics never match a leading wildcard. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (t[0]!.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when every topic the subscription `sub` can match also matches `filter`. */
export function filterCovers(filter: string, sub: string): boolean {
  const f = filter.split('/');
  const s = sub.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= s.length) return false;
    if (s[i] === '#') return false;
    if (f[i] === '+') continue;
    if (s[i] === '+' || f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

const hasWildcard = (topic: string) => /[+#]/.test(topic);

/** A device's own subtree, `homie/<username>/#`. */
function deviceFilter(username: string): string {
  return `${HOMIE_ROOT}/${username}/#`;
}

/** May this client publish to `topic`? Devices: their own subtree only; platform clients: their rights. */
export function mayPublish(username: string, topic: string): boolean {
  if (!topic || hasWildcard(topic) || topic.startsWith('$')) return false;
  if (isPlatformClient(username)) return PLATFORM_CLIENTS[username].some((r: TopicRight) => r.access === 'write' && topicMatches(r.filter, topic));
  return deviceIdOfUsername(username) !== null && topicMatches(deviceFilter(username), topic);
}

/**
 * May this client subscribe to `filter`? A device: inside its own subtree, with no wildcard above
 * it and no `$share` (a device in the bridge's share group would take messages meant for the
 * bridge). The bridge: also `$share/<group>/...` inside its rights.
 */
export function maySubscribe(username: string, filter: string): boolean {
  if (!filter) return false;
  if (isPlatformClient(username)) {
    let f = filter;
    if (f.startsWith(`${SHARE}/`)) {
      const parts = f.split('/');
      if (username !== 'rdm-bridge' || parts.length < 3 || !parts[1]) return false;
      f = parts.slice(2).join('/');
    }
    return PLATFORM_CLIENTS[username].some((r: TopicRight) => r.access === 'read' && filterCovers(r.filter, f));
  }
  return deviceIdOfUsername(username) !== null && filterCovers(deviceFilter(username), filter);
}

/** May this client receive a message on `topic` (a broker's per-delivery check)? */
export function mayRead(username: string, topic: string): boolean {
  if (isPlatformClient(username)) return PLATFORM_CLIENTS[username].some((r: TopicRight) => r.access === 'read' && topicMatches(r.filter, topic));
  return deviceIdOfUsername(username) !== null && topicMatches(deviceFilter(username), topic);
}

/** Mosquitto's acl_file: a section per platform client, then the one pattern for every device. */
export function mosquittoAcl(): string {
  const lines: string[] = ['# Written by the platform (domain/broker-identity.ts); changes are overwritten.'];
  for (const name of PLATFORM_CLIENT_NAMES) {
    lines.push('', `user ${name}`);
    for (const r of PLATFORM_CLIENTS[name] as readonly TopicRight[]) lines.push(`topic ${r.access} ${r.filter}`);
  }
  lines.push('', '# Every device: its own subtree (username = Homie ID).', `pattern readwrite ${HOMIE_ROOT}/%u/#`);
  return lines.join('\n') + '\n';
}

/** One ACL entry of Mosquitto's dynamic-security plugin. */
export interface DynsecAcl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern';
  topic: string;
  priority: number;
  allow: boolean;
}

/**
 * The plugin's ACLs for a login: a device's own subtree, or a platform client's rights. Mosquitto
 * 2.0's plugin substitutes no `%u` (measured: a pattern matched nothing), so each device needs a
 * role of its own with its topic spelled out. The bridge's `$share/...` subscription is checked
 * against the filter with the share prefix, so its rights get that form too.
 */
export function dynsecAcls(username: string): DynsecAcl[] {
  const entry = (acltype: DynsecAcl['acltype'], topic: string): DynsecAcl => ({ acltype, topic, priority: 0, allow: true });
  if (isPlatformClient(username)) {
    const out: DynsecAcl[] = [];
    for (const r of PLATFORM_CLIENTS[username] as readonly TopicRight[]) {
      if (r.access === 'write') out.push(entry('publishClientSend', r.filter));
      else {
        out.push(entry('publishClientReceive', r.filter), entry('subscribePattern', r.filter));
        if (username === 'rdm-bridge') out.push(entry('subscribePattern', `${SHARE}/+/${r.filter}`));
      }
    }
    return out;
  }
  if (deviceIdOfUsername(username) === null) throw new Error(`not a device or platform username: ${JSON.stringify(username)}`);
  const f = deviceFilter(username);
  return [entry('publishClientSend', f), entry('publishClientReceive', f), entry('subscribePattern', f)];
}
