// Turns a batch of raw MQTT messages into what one transaction writes: columns for the telemetry
// INSERT, the last value per property, one update per device, property descriptions, logs,
// reported configs, command results and alert transitions. Pure apart from the device lookup and
// the admission of new property rows (property-admission.ts): validation happens here, so a
// malformed message is dropped (with its reason) before any SQL.
import { isMiscasedDeviceTopic, parseTopic, HOMIE_ID_PATTERN, type ParsedTopic } from '../domain/topics';
import { isDatatype, isDeviceState, isOnlineState, numericValue, type DeviceState } from '../domain/homie';
import { parseCommandResult, parseLog, parsePairingResponse, parseReportedConfig } from '../domain/device-messages';
import { parseOtaReport } from '../domain/ota';
import { breaches, emptyOpenAlertColumns, type AlertSource, type OpenAlertColumns } from '../db/repositories/alerts';
import { emptyTelemetryColumns, type TelemetryColumns } from '../db/repositories/telemetry';
import { emptyLogColumns, type LogColumns } from '../db/repositories/device-logs';
import { emptyCommandResultColumns, type CommandResultColumns } from '../db/repositories/command-results';
import type { CurrentValueColumns, NodePatchColumns, PropertyKeyColumns, PropertyPatchColumns } from '../db/repositories/device-properties';
import { DEFAULT_PROPERTY_CAPS, overlay, type PropertyCaps, type Refusal } from './property-caps';
import type { Admission } from './property-admission';
import type { DeviceUpdateColumns } from '../db/repositories/device-state';
import type { DeviceCache } from './device-cache';
import { ruleApplies, type RuleSet } from './alert-rules';
import type { DropReason, MessageKind } from './metrics';
import type { RawBatch } from './raw-batch';
import type { DeviceEvent, DeviceEventType } from './workflow-events';

/** Largest value or attribute payload stored (Homie values are small; a bigger one is a fault). */
export const MAX_VALUE_BYTES = 64 * 1024;
/** Largest `$rdm` JSON message (config, log, command result). */
export const MAX_JSON_BYTES = 256 * 1024;

export interface PlanContext {
  devices: DeviceCache;
  rules: RuleSet;
  /** Device event types a workflow route wants (see workflow-events.ts); usually none. */
  wants: ReadonlySet<DeviceEventType>;
  /** last_seen_at is written at most once per this many ms per device (0: every batch). */
  lastSeenResolutionMs: number;
  /** When this bridge last wrote each device's last_seen_at. */
  lastSeenWritten: Map<string, number>;
  /** Nodes and properties a device may have (property-caps.ts). Default DEFAULT_PROPERTY_CAPS. */
  caps?: PropertyCaps;
  /**
   * Creates the rows of new property keys within the caps, in Postgres (property-admission.ts).
   * Without it (tests without a database) the cache's inventories stand for what is stored.
   */
  admit?: Admission;
  now?: () => number;
}

/** A device the cache shows full is refused new keys locally for this long after its rows were counted; then Postgres counts again. */
export const RECOUNT_MS = 5_000;

export interface Drops {
  counts: Map<DropReason, { count: number; example: string; detail?: string }>;
  total: number;
}

export interface WritePlan {
  messages: number;
  kinds: Record<MessageKind, number>;
  drops: Drops;
  telemetry: TelemetryColumns;
  current: CurrentValueColumns;
  devices: DeviceUpdateColumns;
  /** Rows of nodes or properties a device no longer lists (`$nodes`, `<node>/$properties`). */
  unlisted: { deviceIds: string[]; nodes: (string | null)[]; keep: string[] };
  propertyPatches: PropertyPatchColumns;
  nodePatches: NodePatchColumns;
  logs: LogColumns;
  configs: { deviceIds: string[]; versions: number[]; settings: string[]; atMs: number[] };
  commandResults: CommandResultColumns;
  openAlerts: OpenAlertColumns;
  resolveAlerts: { deviceIds: string[]; sources: AlertSource[]; ruleIds: (string | null)[]; atMs: number[] };
  /** Devices whose last `$state` in the batch is `ready` (their pending config is re-sent). */
  readyDevices: string[];
  /** Devices that logged (checked against the per-device log cap). */
  logDevices: string[];
  /** Devices whose last_seen_at this batch writes, and when. */
  seen: Map<string, number>;
  events: DeviceEvent[];
}

interface DeviceAcc {
  seen: number | null;
  state: DeviceState | null;
  stateAt: number;
  alertAt: number | null;
  patch: Record<string, unknown> | null;
  attributes: Record<string, string | null> | null;
}

interface AlertAcc {
  deviceId: string;
  ruleId: string;
  node: string;
  property: string;
  severity: string;
  message: string | null;
  openAt: number | null;
  openValue: string | null;
  breached: boolean;
  lastAt: number;
}

const PROPERTY_ATTRIBUTES: Record<string, string> = {
  $name: 'name',
  $datatype: 'datatype',
  $format: 'format',
  $unit: 'unit',
  $settable: 'settable',
  $retained: 'retained',
};
const HOMIE_VERSION = /^\d+\.\d+(\.\d+)?$/;
const SEP = '\u0000';

function newKinds(): Record<MessageKind, number> {
  return { value: 0, device_attribute: 0, node_attribute: 0, property_attribute: 0, config_reported: 0, log: 0, command_result: 0, pairing_response: 0, ota_report: 0, ignored: 0 };
}

/**
 * JSON text Postgres accepts as jsonb, or null: no \u0000, and no lone UTF-16 surrogate (valid
 * JSON, and JavaScript's JSON.parse takes it, but jsonb refuses; JSON.stringify writes exactly
 * the lone ones as \udXXX escapes).
 */
function jsonForPg(v: unknown): string | null {
  const s = JSON.stringify(v);
  return s === undefined || s.includes('\\u0000') || /\\ud[89a-f]/i.test(s) ? null : s;
}

/** A Homie ID list ("a,b,c"; Homie 3 array nodes as "name[]"), or null when malformed. */
function idList(payload: string): string[] | null {
  const ids = payload.split(',').map((s) => (s.endsWith('[]') ? s.slice(0, -2) : s));
  return ids.every((id) => HOMIE_ID_PATTERN.test(id)) ? ids : null;
}

function isoDeviceTime(t: string | undefined): string | null {
  if (t === undefined) return null;
  const d = new Date(t);
  const y = d.getUTCFullYear();
  return y >= 1 && y <= 9999 ? d.toISOString() : null;
}

class Invalid {
  constructor(readonly reason: string) {}
}

/** A property attribute's payload as the value stored in its column (null: cleared). */
function attributeValue(column: string, payload: string | null): unknown {
  if (payload === null) return null;
  if (column === 'datatype' && !isDatatype(payload)) return new Invalid('not a Homie datatype');
  if (column === 'settable' || column === 'retained') {
    if (payload !== 'true' && payload !== 'false') return new Invalid('not true or false');
    return payload === 'true';
  }
  return payload;
}

/** A message's payload as a list its classify step would accept, or undefined (then it is dropped there). */
function announcedList(buf: Buffer, max: number, strip: boolean): string[] | null | undefined {
  if (buf.length === 0) return null;
  if (buf.length > MAX_VALUE_BYTES || buf.indexOf(0) !== -1) return undefined;
  const text = buf.toString('utf8');
  const ids = idList(text);
  if (!ids || ids.length > max) return undefined;
  return strip ? ids : text.split(',');
}

/**
 * The property rows this batch would create (values, property attributes, `$properties` lists)
 * that the cache does not know: refused at once when the cache, counted moments ago, shows no
 * room; the rest go to the admission, which creates them within the caps or refuses them.
 */
async function admitNewProperties(raw: RawBatch, parsed: (ParsedTopic | null)[], ctx: PlanContext, caps: PropertyCaps): Promise<Map<string, Refusal>> {
  const nodeLists = new Map<string, string[] | null>();
  const propertyLists = new Map<string, Map<string, string[] | null>>();
  const wanted = new Map<string, [string, string, string]>();
  const want = (d: string, n: string, pr: string) => {
    if (ctx.devices.properties(d)?.has(n, pr)) return;
    wanted.set(d + SEP + n + SEP + pr, [d, n, pr]);
  };
  for (let i = 0; i < raw.size; i++) {
    const p = parsed[i];
    if (!p || !ctx.devices.get(p.deviceId)) continue;
    const buf = raw.payloads[i]!;
    const d = p.deviceId;
    // Only what classify will keep creates a row: not a deletion, nor a payload it drops.
    if (buf.length === 0 || buf.length > MAX_VALUE_BYTES || buf.indexOf(0) !== -1) {
      if (p.kind === 'value' || p.kind === 'property-attribute') continue;
    }
    if (p.kind === 'value') {
      want(d, p.node, p.property);
    } else if (p.kind === 'property-attribute') {
      const column = PROPERTY_ATTRIBUTES[p.attribute];
      if (column && !(attributeValue(column, buf.toString('utf8')) instanceof Invalid)) want(d, p.node, p.property);
    } else if (p.kind === 'device-attribute' && p.attribute === '$nodes') {
      const list = announcedList(buf, caps.maxNodes, false);
      if (list !== undefined) nodeLists.set(d, list);
    } else if (p.kind === 'node-attribute' && p.attribute === '$properties') {
      const list = announcedList(buf, caps.maxPropertiesPerNode, true);
      if (list === undefined) continue;
      let m = propertyLists.get(d);
      if (!m) propertyLists.set(d, (m = new Map()));
      m.set(p.node, list);
      for (const id of list ?? []) want(d, p.node, id);
    }
  }
  const refused = new Map<string, Refusal>();
  if (wanted.size === 0) return refused;
  const now = (ctx.now ?? Date.now)();
  const keys: PropertyKeyColumns = { deviceIds: [], nodes: [], properties: [] };
  for (const [k, [d, n, pr]] of wanted) { // in the order published: the first keys win
    const inv = ctx.devices.properties(d);
    const relisting = nodeLists.has(d) || propertyLists.has(d); // rows may go: only Postgres can count
    if (ctx.admit && inv && !relisting && now - inv.checkedAt < RECOUNT_MS) {
      const why = inv.refusal(n, pr, overlay(inv.announced, undefined, undefined), caps);
      if (why) {
        refused.set(k, why);
        continue;
      }
    }
    keys.deviceIds.push(d);
    keys.nodes.push(n);
    keys.properties.push(pr);
  }
  if (keys.deviceIds.length === 0) return refused;
  if (ctx.admit) {
    for (const [k, why] of await ctx.admit({ keys, nodeLists, propertyLists })) refused.set(k, why);
    return refused;
  }
  // No database: the cache's inventories are what is stored.
  for (const d of new Set(keys.deviceIds)) ctx.devices.properties(d)?.retainListed(nodeLists.get(d), propertyLists.get(d));
  for (let i = 0; i < keys.deviceIds.length; i++) {
    const d = keys.deviceIds[i]!;
    const inv = ctx.devices.properties(d);
    if (!inv) continue;
    const why = inv.admit(keys.nodes[i]!, keys.properties[i]!, overlay(inv.announced, nodeLists.get(d), propertyLists.get(d)), caps);
    if (why) refused.set(d + SEP + keys.nodes[i]! + SEP + keys.properties[i]!, why);
  }
  return refused;
}

/**
 * Classifies and validates every message of the batch. Device IDs not in the cache are looked up
 * first, in one query; messages of unknown devices are dropped.
 */
export async function buildPlan(raw: RawBatch, ctx: PlanContext): Promise<WritePlan> {
  const n = raw.size;
  const parsed: (ParsedTopic | null)[] = new Array(n);
  const lookup = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = parseTopic(raw.topics[i]!);
    parsed[i] = p;
    if (!p) continue;
    const known = ctx.devices.get(p.deviceId);
    if (known === undefined || (known !== null && !ctx.devices.properties(p.deviceId))) lookup.add(p.deviceId); // not cached, or its rows not counted
  }
  if (lookup.size > 0) await ctx.devices.resolve(lookup);

  const caps = ctx.caps ?? DEFAULT_PROPERTY_CAPS;
  const plan: WritePlan = {
    messages: n,
    kinds: newKinds(),
    drops: { counts: new Map(), total: 0 },
    telemetry: emptyTelemetryColumns(),
    current: { deviceIds: [], nodes: [], properties: [], values: [], atMs: [] },
    devices: { deviceIds: [], seenMs: [], states: [], stateMs: [], online: [], patches: [], maxAttributes: caps.maxAttributes },
    unlisted: { deviceIds: [], nodes: [], keep: [] },
    propertyPatches: { deviceIds: [], nodes: [], properties: [], patches: [], atMs: [] },
    nodePatches: { deviceIds: [], nodes: [], patches: [] },
    logs: emptyLogColumns(),
    configs: { deviceIds: [], versions: [], settings: [], atMs: [] },
    commandResults: emptyCommandResultColumns(),
    openAlerts: emptyOpenAlertColumns(),
    resolveAlerts: { deviceIds: [], sources: [], ruleIds: [], atMs: [] },
    readyDevices: [],
    logDevices: [],
    seen: new Map(),
    events: [],
  };
  const kinds = plan.kinds;
  const drop = (reason: DropReason, topic: string, detail?: string) => {
    const d = plan.drops.counts.get(reason);
    if (d) d.count++;
    else plan.drops.counts.set(reason, { count: 1, example: topic, detail });
    plan.drops.total++;
  };

  const refused = await admitNewProperties(raw, parsed, ctx, caps);

  const devices = new Map<string, DeviceAcc>();
  const acc = (id: string): DeviceAcc => {
    let a = devices.get(id);
    if (!a) devices.set(id, (a = { seen: null, state: null, stateAt: 0, alertAt: null, patch: null, attributes: null }));
    return a;
  };
  const setAttribute = (a: DeviceAcc, key: string, value: string | null) => {
    (a.attributes ??= {})[key] = value;
  };
  const setColumn = (a: DeviceAcc, column: string, value: string | null) => {
    (a.patch ??= {})[column] = value;
  };

  // Last value per property: index into plan.current.
  const currentIndex = new Map<string, number>();
  const propertyPatches = new Map<string, { d: string; n: string; p: string; patch: Record<string, unknown>; at: number }>();
  const nodePatches = new Map<string, { d: string; n: string; patch: Record<string, unknown> }>();
  const unlisted = new Map<string, { d: string; n: string | null; keep: string }>();
  const configs = new Map<string, { version: number; settings: string; at: number }>();
  const results = new Map<string, number>(); // request ID -> index in commandResults
  const ruleAlerts = new Map<string, AlertAcc>();
  const logDevices = new Set<string>();
  const rules = ctx.rules.size > 0 ? ctx.rules : null;
  const { wants } = ctx;
  const tel = plan.telemetry;
  const cur = plan.current;

  for (let i = 0; i < n; i++) {
    const topic = raw.topics[i]!;
    try {
      classify(i, topic);
    } catch (err) {
      // A message this code did not expect: drop it rather than the batch.
      drop('invalid_payload', topic, `unexpected: ${(err as Error).message}`);
    }
  }

  function classify(i: number, topic: string): void {
    const p = parsed[i];
    if (!p) {
      // A controller's broadcast (homie/$broadcast/...) is for devices, not for the platform.
      if (topic.startsWith('homie/$broadcast/')) kinds.ignored++;
      else if (isMiscasedDeviceTopic(topic)) drop('device_id_case', topic, 'a Homie ID is lowercase');
      else drop('unknown_topic', topic);
      return;
    }
    if (p.kind === 'set' || p.kind === 'config-desired' || p.kind === 'command' || p.kind === 'pairing-request' || p.kind === 'owner' || p.kind === 'ota-set') {
      kinds.ignored++; // the platform's own messages to devices
      return;
    }
    const deviceId = p.deviceId;
    const device = ctx.devices.get(deviceId);
    if (!device) {
      drop('unknown_device', topic);
      return;
    }
    const buf = raw.payloads[i]!;
    const at = raw.ats[i]!;
    const live = raw.live[i]!;
    const isJson = p.kind === 'config-reported' || p.kind === 'log' || p.kind === 'command-result' || p.kind === 'pairing-response' || p.kind === 'ota-report';
    if (buf.length > (isJson ? MAX_JSON_BYTES : MAX_VALUE_BYTES)) {
      drop('too_large', topic, `${buf.length} bytes`);
      return;
    }
    if (buf.indexOf(0) !== -1) {
      drop('invalid_payload', topic, 'NUL byte');
      return;
    }
    const empty = buf.length === 0;

    switch (p.kind) {
      case 'value': {
        const key = deviceId + SEP + p.node + SEP + p.property;
        const why = refused.get(key);
        if (why) {
          drop(why, topic);
          return;
        }
        const payload = empty ? null : buf.toString('utf8');
        const num = payload === null ? null : numericValue(payload);
        if (payload !== null && live) {
          tel.deviceIds.push(deviceId);
          tel.nodes.push(p.node);
          tel.properties.push(p.property);
          tel.atMs.push(at);
          tel.values.push(payload);
          tel.nums.push(num);
        }
        const j = currentIndex.get(key);
        if (j === undefined) {
          currentIndex.set(key, cur.deviceIds.length);
          cur.deviceIds.push(deviceId);
          cur.nodes.push(p.node);
          cur.properties.push(p.property);
          cur.values.push(payload);
          cur.atMs.push(at);
        } else {
          cur.values[j] = payload;
          cur.atMs[j] = at;
        }
        if (num !== null && rules) {
          const watching = rules.for(p.node, p.property);
          if (watching) {
            for (const rule of watching) {
              if (!ruleApplies(rule, device)) continue; // out of this rule's scope; the next rule may apply
              const breached = breaches(rule.operator, num, rule.threshold);
              const k = deviceId + SEP + rule.id;
              let a = ruleAlerts.get(k);
              if (!a) {
                ruleAlerts.set(k, (a = { deviceId, ruleId: rule.id, node: p.node, property: p.property, severity: rule.severity, message: null, openAt: null, openValue: null, breached, lastAt: at }));
              }
              if (breached && a.openAt === null) {
                a.openAt = at;
                a.openValue = payload;
                a.message = `${rule.name}: ${p.node}/${p.property} = ${payload} (${rule.operator} ${rule.threshold})`;
              }
              a.breached = breached;
              a.lastAt = at;
            }
          }
        }
        if (payload !== null && wants.has('value')) plan.events.push({ type: 'value', deviceId, node: p.node, property: p.property, payload, at });
        kinds.value++;
        break;
      }
      case 'device-attribute': {
        const a = acc(deviceId);
        const attr = p.attribute;
        const payload = empty ? null : buf.toString('utf8');
        if (attr === '$state') {
          if (payload === null) {
            // A cleared $state (the device was removed): nothing to apply.
          } else if (isDeviceState(payload)) {
            a.state = payload;
            a.stateAt = at;
            if (payload === 'alert' && a.alertAt === null) a.alertAt = at;
            if (wants.has('state')) plan.events.push({ type: 'state', deviceId, state: payload, at });
          } else {
            drop('invalid_payload', topic, 'not a Homie $state');
            return;
          }
        } else if (attr === '$homie') {
          if (payload !== null && !HOMIE_VERSION.test(payload)) {
            drop('invalid_payload', topic, 'not a Homie version');
            return;
          }
          setColumn(a, 'homie_version', payload);
        } else if (attr === '$name') {
          setColumn(a, 'name', payload);
        } else if (attr === '$fw/version') {
          setColumn(a, 'firmware_version', payload);
        } else if (attr === '$nodes') {
          if (payload !== null) {
            const ids = idList(payload);
            if (!ids) {
              drop('invalid_payload', topic, 'not a list of node IDs');
              return;
            }
            if (ids.length > caps.maxNodes) {
              drop('too_many_nodes', topic, `${ids.length} nodes listed, at most ${caps.maxNodes}`);
              return;
            }
            unlisted.set(deviceId + SEP, { d: deviceId, n: null, keep: payload }); // as listed: `name[]` keeps an array's elements
          }
          setAttribute(a, attr, payload);
        } else {
          setAttribute(a, attr, payload);
        }
        kinds.device_attribute++;
        break;
      }
      case 'node-attribute': {
        const a = acc(deviceId);
        const payload = empty ? null : buf.toString('utf8');
        const nodeKey = deviceId + SEP + p.node;
        if (p.attribute === '$properties') {
          if (payload === null) {
            unlisted.set(nodeKey, { d: deviceId, n: p.node, keep: '' });
          } else {
            const ids = idList(payload);
            if (!ids) {
              drop('invalid_payload', topic, 'not a list of property IDs');
              return;
            }
            if (ids.length > caps.maxPropertiesPerNode) {
              drop('too_many_properties', topic, `${ids.length} properties listed, at most ${caps.maxPropertiesPerNode}`);
              return;
            }
            // The list applies even when the caps refused rows for some of its IDs (the admission
            // counted on its removals): those properties get no row, and their values are dropped.
            unlisted.set(nodeKey, { d: deviceId, n: p.node, keep: ids.join(',') });
          }
        } else if (p.attribute === '$name' || p.attribute === '$type') {
          let np = nodePatches.get(nodeKey);
          if (!np) nodePatches.set(nodeKey, (np = { d: deviceId, n: p.node, patch: {} }));
          np.patch[p.attribute === '$name' ? 'name' : 'type'] = payload;
        }
        // Every node attribute (also Homie 3's $array) is kept on the device, by its path.
        setAttribute(a, `${p.node}/${p.attribute}`, payload);
        kinds.node_attribute++;
        break;
      }
      case 'property-attribute': {
        const column = PROPERTY_ATTRIBUTES[p.attribute];
        if (!column) {
          kinds.ignored++; // an attribute Homie does not define: nothing to store it in
          break;
        }
        const payload = empty ? null : buf.toString('utf8');
        const value = attributeValue(column, payload);
        if (value instanceof Invalid) {
          drop('invalid_payload', topic, value.reason);
          return;
        }
        const key = deviceId + SEP + p.node + SEP + p.property;
        const why = refused.get(key);
        if (why) {
          drop(why, topic);
          return;
        }
        let pp = propertyPatches.get(key);
        if (!pp) propertyPatches.set(key, (pp = { d: deviceId, n: p.node, p: p.property, patch: {}, at }));
        pp.patch[column] = value;
        pp.at = at;
        kinds.property_attribute++;
        break;
      }
      case 'config-reported': {
        if (empty) {
          kinds.ignored++; // the device cleared its report; the last one stays on record
          break;
        }
        const m = parseReportedConfig(buf);
        const settings = m ? jsonForPg(m.settings) : null;
        if (!m || settings === null || m.version > 2_147_483_647) {
          drop('invalid_payload', topic, 'not a reported configuration');
          return;
        }
        configs.set(deviceId, { version: m.version, settings, at });
        if (wants.has('config-reported')) plan.events.push({ type: 'config-reported', deviceId, version: m.version, at });
        kinds.config_reported++;
        break;
      }
      case 'log': {
        if (empty) {
          kinds.ignored++;
          break;
        }
        const m = parseLog(buf);
        const fields = m?.fields === undefined ? null : jsonForPg(m.fields);
        if (!m || (m.fields !== undefined && fields === null) || m.message.includes('\u0000')) {
          drop('invalid_payload', topic, 'not a log record');
          return;
        }
        const L = plan.logs;
        L.deviceIds.push(deviceId);
        L.atMs.push(at);
        L.deviceTimes.push(isoDeviceTime(m.time));
        L.levels.push(m.level);
        L.messages.push(m.message);
        L.fields.push(fields);
        logDevices.add(deviceId);
        kinds.log++;
        break;
      }
      case 'command-result': {
        if (empty) {
          kinds.ignored++;
          break;
        }
        const m = parseCommandResult(buf);
        const result = m?.result === undefined ? null : jsonForPg(m.result);
        if (!m || (m.result !== undefined && result === null) || m.error?.includes('\u0000')) {
          drop('invalid_payload', topic, 'not a command result');
          return;
        }
        const C = plan.commandResults;
        const j = results.get(p.requestId);
        if (j === undefined) {
          results.set(p.requestId, C.requestIds.length);
          C.requestIds.push(p.requestId);
          C.deviceIds.push(deviceId);
          C.ok.push(m.ok);
          C.results.push(result);
          C.errors.push(m.error ?? null);
          C.atMs.push(at);
        } // a repeated answer: the first one counts (the row leaves `sent` with it)
        if (wants.has('command-result')) plan.events.push({ type: 'command-result', deviceId, requestId: p.requestId, ok: m.ok, at });
        kinds.command_result++;
        break;
      }
      case 'pairing-response': {
        // Nothing to store: the answer is for the pairing workflow, signalled after this batch commits.
        const m = empty ? null : parsePairingResponse(buf);
        if (!m) {
          drop('invalid_payload', topic, 'not a pairing response');
          return;
        }
        if (wants.has('pairing-response')) plan.events.push({ type: 'pairing-response', deviceId, pairingId: m.pairingId, accept: m.accept, at });
        kinds.pairing_response++;
        break;
      }
      case 'ota-report': {
        // Nothing to store here: the update's step is the device lifecycle workflow's to record.
        const m = empty ? null : parseOtaReport(buf);
        if (!m) {
          drop('invalid_payload', topic, 'not an OTA report');
          return;
        }
        if (wants.has('ota-report')) plan.events.push({ type: 'ota-report', deviceId, report: m, at });
        kinds.ota_report++;
        break;
      }
    }
    if (live) {
      const a = acc(deviceId);
      a.seen = at;
    }
  }

  // Devices: one row each, sorted (concurrent batches then lock rows in the same order).
  const D = plan.devices;
  for (const id of [...devices.keys()].sort()) {
    const a = devices.get(id)!;
    let seen = a.seen;
    if (seen !== null && a.state === null && a.patch === null && a.attributes === null && ctx.lastSeenResolutionMs > 0) {
      const last = ctx.lastSeenWritten.get(id);
      if (last !== undefined && seen - last < ctx.lastSeenResolutionMs) seen = null;
    }
    if (seen === null && a.state === null && a.patch === null && a.attributes === null) continue;
    if (seen !== null) plan.seen.set(id, seen);
    let patch = a.patch;
    if (a.attributes) (patch ??= {}).attributes = a.attributes;
    const patchText = patch ? jsonForPg(patch) : null;
    D.deviceIds.push(id);
    D.seenMs.push(seen);
    D.states.push(a.state);
    D.stateMs.push(a.state === null ? null : a.stateAt);
    D.online.push(a.state === null ? null : isOnlineState(a.state));
    D.patches.push(patchText);
    if (a.state !== null) {
      if (a.alertAt !== null) {
        const O = plan.openAlerts;
        O.deviceIds.push(id);
        O.sources.push('device');
        O.ruleIds.push(null);
        O.nodes.push(null);
        O.properties.push(null);
        O.values.push(null);
        O.severities.push('warning');
        O.messages.push('the device reported $state = alert');
        O.atMs.push(a.alertAt);
      }
      if (a.state !== 'alert') {
        const R = plan.resolveAlerts;
        R.deviceIds.push(id);
        R.sources.push('device');
        R.ruleIds.push(null);
        R.atMs.push(a.stateAt);
      }
      if (a.state === 'ready') plan.readyDevices.push(id);
    }
  }

  for (const u of unlisted.values()) {
    plan.unlisted.deviceIds.push(u.d);
    plan.unlisted.nodes.push(u.n);
    plan.unlisted.keep.push(u.keep);
  }
  for (const pp of propertyPatches.values()) {
    plan.propertyPatches.deviceIds.push(pp.d);
    plan.propertyPatches.nodes.push(pp.n);
    plan.propertyPatches.properties.push(pp.p);
    plan.propertyPatches.patches.push(JSON.stringify(pp.patch));
    plan.propertyPatches.atMs.push(pp.at);
  }
  for (const np of nodePatches.values()) {
    plan.nodePatches.deviceIds.push(np.d);
    plan.nodePatches.nodes.push(np.n);
    plan.nodePatches.patches.push(JSON.stringify(np.patch));
  }
  for (const [id, c] of configs) {
    plan.configs.deviceIds.push(id);
    plan.configs.versions.push(c.version);
    plan.configs.settings.push(c.settings);
    plan.configs.atMs.push(c.at);
  }
  for (const a of ruleAlerts.values()) {
    if (a.openAt !== null) {
      const O = plan.openAlerts;
      O.deviceIds.push(a.deviceId);
      O.sources.push('rule');
      O.ruleIds.push(a.ruleId);
      O.nodes.push(a.node);
      O.properties.push(a.property);
      O.values.push(a.openValue);
      O.severities.push(a.severity);
      O.messages.push(a.message!);
      O.atMs.push(a.openAt);
    }
    if (!a.breached) {
      const R = plan.resolveAlerts;
      R.deviceIds.push(a.deviceId);
      R.sources.push('rule');
      R.ruleIds.push(a.ruleId);
      R.atMs.push(a.lastAt);
    }
  }
  sortCurrent(plan.current);
  plan.logDevices = [...logDevices];
  return plan;
}

/** Sorts the current values by (device, node, property) so concurrent upserts lock in one order. */
function sortCurrent(c: CurrentValueColumns): void {
  const n = c.deviceIds.length;
  if (n < 2) return;
  const idx = Array.from({ length: n }, (_, i) => i);
  const { deviceIds: d, nodes: no, properties: pr } = c;
  idx.sort((a, b) => (d[a]! < d[b]! ? -1 : d[a]! > d[b]! ? 1 : no[a]! < no[b]! ? -1 : no[a]! > no[b]! ? 1 : pr[a]! < pr[b]! ? -1 : pr[a]! > pr[b]! ? 1 : 0));
  const pick = <T>(arr: T[]) => idx.map((i) => arr[i]!);
  c.deviceIds = pick(c.deviceIds);
  c.nodes = pick(c.nodes);
  c.properties = pick(c.properties);
  c.values = pick(c.values);
  c.atMs = pick(c.atMs);
}
