// Many devices in one process, each with its own MQTT connection, for load tests and end-to-end
// checks ("every value published is stored exactly once"). One timer wheel paces them all: a
// fleet-wide target of R value messages per second is spread evenly over the devices and kept
// exact over time (firmware/timer-wheel.ts); connections are opened at a limited rate so the
// broker is not stampeded.
//
// OTA: every device takes updates on `$rdm/ota/set`. `ota: 'instant'` (default) answers each step at
// once without a download or a reboot (platform rollouts over thousands of devices); `'full'`
// downloads into memory, verifies and reboots for real (each device holds its image until it is
// installed: firmware/ota/bench-full.ts, 100 devices fetching 4 MiB at once, peaks near 300 MB).
//
// Capacity: every device is a TCP socket, i.e. a file descriptor of this process. The OS limit
// (`ulimit -n`, 20000 on the project's machine) minus what the process needs otherwise bounds
// the fleet size, and the broker has its own limit too.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { newDeviceId } from '../domain/ids';
import { DEFAULT_MQTT_URL } from './provisioning';
import type { BackoffOptions } from './backoff';
import { Device, type HomieMode } from './device';
import type { OtaMode, OtaTuning } from './ota/updater';
import { findModel, getModel, MODEL_NAMES } from './models';
import { TimerWheel, type WheelEntry } from './timer-wheel';

export interface FleetCredential {
  deviceId: string;
  /** devices.csv `mqtt_username`; default the Homie ID. */
  mqttUsername?: string | null;
  secret: string;
  /** Overrides FleetOptions.mqttUrl (e.g. the `mqtt_url` column of devices.csv). */
  mqttUrl?: string | null;
  /** Used when it names a firmware model and no mix is given. */
  model?: string | null;
}

export interface FleetOptions {
  devices: FleetCredential[];
  /** Broker for credentials that name none. */
  mqttUrl?: string;
  /** Model weights, e.g. {"ev-charger":0.5,"thermostat":0.3,"lock":0.2}. Default: each credential's
   * model when it names one, else an even mix of all models. */
  mix?: Record<string, number>;
  /** Pace, one of: value messages per second for the whole fleet, per device, or the interval at
   * which each device publishes all its values. Default: publishIntervalMs 5000. */
  targetRate?: number;
  perDeviceRate?: number;
  publishIntervalMs?: number;
  /** New connections per second while starting. Default 200. */
  connectRate?: number;
  qos?: 0 | 1;
  homie?: HomieMode;
  /** Values only: no node/property description (not a valid Homie device; for raw throughput). */
  bench?: boolean;
  /** Subscribe to /set, config and commands. Default true. */
  subscribe?: boolean;
  seed?: number | string;
  backoff?: Partial<BackoffOptions>;
  keepaliveS?: number;
  /** CONNACK wait. Default 15 s: under a connection storm the broker answers late, and a timeout
   * only adds a retry to the storm. */
  connectTimeoutMs?: number;
  protocolVersion?: 4 | 5;
  wheelResolutionMs?: number;
  /** How OTA updates run (above). Default 'instant'. */
  ota?: OtaMode;
  /** The platform's OTA public key (SPKI PEM); without it every update is refused `no-public-key`. */
  otaPublicKey?: string | null;
  /** Failure injection: these devices' new firmware fails its health check (and rolls back). */
  otaFailHealthCheck?: Iterable<string>;
  otaTuning?: OtaTuning;
  /** How long a reboot keeps a device off the network. Default 1000 ms. */
  rebootDelayMs?: number;
}

export interface FleetStats {
  devices: number;
  /** Announced and online now. */
  connected: number;
  /** Devices whose connection was started by the ramp. */
  started: number;
  connects: number;
  reconnects: number;
  connectFailures: number;
  /** Value messages handed to the clients. */
  valuesSent: number;
  /** Value messages acknowledged (QoS 1) or written (QoS 0). */
  valuesPublished: number;
  valuesFailed: number;
  /** Device ticks fired by the wheel (each publishes all of a device's values when connected). */
  ticks: number;
  /** The wheel's worst lateness (ms). */
  maxLagMs: number;
  /** Target value messages per second for the whole fleet (every device connected). */
  targetRate: number;
  /** performance.now() of this snapshot and of start(): rates are differences of two snapshots. */
  atMs: number;
  startedAtMs: number | null;
  models: Record<string, number>;
}

const DEFAULT_INTERVAL_MS = 5_000;
const GOLDEN = 0.6180339887498949;

/** Assigns models to n devices in the mix's proportions, interleaved (smooth weighted round robin)
 * so that any prefix of the fleet (the first devices the ramp connects) has the same mix. */
export function assignModels(n: number, mix: Record<string, number>): string[] {
  const entries = Object.entries(mix).filter(([, w]) => w > 0);
  if (entries.length === 0) throw new Error('the model mix has no positive weight');
  for (const [name, w] of entries) {
    getModel(name);
    if (!Number.isFinite(w)) throw new Error(`weight of ${name} is not a number`);
  }
  const total = entries.reduce((s, [, w]) => s + w, 0);
  const current = entries.map(() => 0);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 0; j < entries.length; j++) {
      current[j]! += entries[j]![1];
      if (current[j]! > current[best]!) best = j;
    }
    current[best]! -= total;
    out.push(entries[best]![0]);
  }
  return out;
}

/** Fresh credentials: give them to the broker (test/support/broker.ts registerDevices) before the fleet connects. */
export function generateCredentials(n: number): FleetCredential[] {
  const seen = new Set<string>();
  const out: FleetCredential[] = [];
  while (out.length < n) {
    const deviceId = newDeviceId();
    if (seen.has(deviceId)) continue;
    seen.add(deviceId);
    out.push({ deviceId, secret: randomBytes(16).toString('base64url') });
  }
  return out;
}

export class Fleet {
  readonly devices: Device[];
  private readonly byId = new Map<string, Device>();
  private readonly periods: number[] = [];
  private readonly wheel: TimerWheel;
  private readonly entries: WheelEntry[] = [];
  private readonly online = new Set<Device>();
  private readonly connectWaiters = new Set<() => void>();
  private readonly connectRate: number;
  private rampTimer: NodeJS.Timeout | null = null;
  private startedCount = 0;
  private startedAt: number | null = null;
  private running = false;
  readonly targetRate: number;

  constructor(readonly o: FleetOptions) {
    const n = o.devices.length;
    if (n === 0) throw new Error('a fleet needs at least one device');
    const paces = [o.targetRate, o.perDeviceRate, o.publishIntervalMs].filter((v) => v !== undefined);
    if (paces.length > 1) throw new Error('give one of targetRate, perDeviceRate, publishIntervalMs');
    for (const v of paces) if (!(v! > 0) || !Number.isFinite(v)) throw new Error(`pace must be a positive number, not ${v}`);
    this.connectRate = o.connectRate ?? 200;
    if (!(this.connectRate > 0)) throw new Error('connectRate must be positive');
    const failHealthCheck = new Set(o.otaFailHealthCheck ?? []);

    const models = o.mix
      ? assignModels(n, o.mix)
      : o.devices.every((d) => findModel(d.model))
        ? o.devices.map((d) => d.model!)
        : assignModels(n, Object.fromEntries(MODEL_NAMES.map((m) => [m, 1])));

    this.devices = o.devices.map((cred, i) => {
      const model = getModel(models[i]!);
      const valuesPerTick = model.nodes.reduce((s, node) => s + node.properties.length, 0);
      // The tick period that yields the asked rate: a tick publishes all of a device's values.
      const period =
        o.targetRate !== undefined
          ? (valuesPerTick * n * 1000) / o.targetRate
          : o.perDeviceRate !== undefined
            ? (valuesPerTick * 1000) / o.perDeviceRate
            : (o.publishIntervalMs ?? DEFAULT_INTERVAL_MS);
      this.periods.push(period);
      const d = new Device({
        deviceId: cred.deviceId,
        ...(cred.mqttUsername ? { mqttUsername: cred.mqttUsername } : {}),
        secret: cred.secret,
        mqttUrl: cred.mqttUrl || o.mqttUrl || DEFAULT_MQTT_URL,
        model,
        homie: o.homie,
        publishIntervalMs: period,
        qos: o.qos ?? 1,
        seed: `${o.seed ?? 'fleet'}:${cred.deviceId}`,
        announce: o.bench ? 'values-only' : 'full',
        subscribe: o.subscribe ?? true,
        autoTick: false,
        backoff: o.backoff,
        keepaliveS: o.keepaliveS,
        connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
        protocolVersion: o.protocolVersion,
        logRingSize: 20,
        ota: o.ota ?? 'instant',
        otaPublicKey: o.otaPublicKey,
        otaFailHealthCheck: failHealthCheck.has(cred.deviceId),
        otaTuning: o.otaTuning,
        rebootDelayMs: o.rebootDelayMs,
      });
      d.on('connected', () => this.markOnline(d, true));
      d.on('disconnected', () => this.markOnline(d, false));
      d.on('stopped', () => this.markOnline(d, false));
      d.on('reboot', () => this.markOnline(d, false));
      if (this.byId.has(d.deviceId)) throw new Error(`device ${d.deviceId} is listed twice`);
      this.byId.set(d.deviceId, d);
      return d;
    });
    this.targetRate = this.devices.reduce((s, d, i) => s + (d.sim.props.length * 1000) / this.periods[i]!, 0);
    this.wheel = new TimerWheel({ resolutionMs: o.wheelResolutionMs ?? 2 });
  }

  private markOnline(d: Device, online: boolean): void {
    if (online) this.online.add(d);
    else this.online.delete(d);
    for (const w of [...this.connectWaiters]) w();
  }

  device(deviceId: string): Device | undefined {
    return this.byId.get(deviceId);
  }

  /** Starts pacing and the connect ramp; returns at once (see waitConnected). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const now = performance.now();
    this.startedAt = now;
    const n = this.devices.length;
    // Phases spread by the golden ratio: evenly for any count and any mix of periods.
    this.devices.forEach((d, i) => {
      const period = this.periods[i]!;
      this.entries.push(this.wheel.add(() => d.tick(), period, now + period * ((i * GOLDEN) % 1)));
    });
    this.wheel.start();
    const rampStart = performance.now();
    const release = () => {
      const due = Math.min(n, Math.floor(((performance.now() - rampStart) / 1000) * this.connectRate) + 1);
      while (this.startedCount < due) this.devices[this.startedCount++]!.start();
      if (this.startedCount >= n && this.rampTimer) {
        clearInterval(this.rampTimer);
        this.rampTimer = null;
      }
    };
    this.rampTimer = setInterval(release, 10);
    release();
  }

  /** Resolves when at least n devices are announced and online; rejects after timeoutMs. */
  waitConnected(n = this.devices.length, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.online.size < n) return;
        this.connectWaiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.connectWaiters.delete(check);
        reject(new Error(`fleet: ${this.online.size} of ${n} devices connected after ${timeoutMs} ms`));
      }, timeoutMs);
      this.connectWaiters.add(check);
      check();
    });
  }

  /** Stops pacing, then every device: gracefully ($state = disconnected, in-flight values acknowledged) or by killing the sockets. */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (this.rampTimer) clearInterval(this.rampTimer);
    this.rampTimer = null;
    this.wheel.stop();
    for (const e of this.entries) this.wheel.remove(e);
    this.entries.length = 0;
    this.running = false;
    if (opts.graceful === false) for (const d of this.devices) d.kill();
    else await Promise.all(this.devices.map((d) => d.stop()));
    this.online.clear();
  }

  stats(): FleetStats {
    let valuesSent = 0;
    let valuesPublished = 0;
    let valuesFailed = 0;
    let connects = 0;
    let reconnects = 0;
    let connectFailures = 0;
    const models: Record<string, number> = {};
    for (const d of this.devices) {
      const t = d.totals();
      valuesSent += t.sent;
      valuesPublished += t.published;
      valuesFailed += t.failed;
      const s = d.stats;
      connects += s.connects;
      reconnects += s.reconnects;
      connectFailures += s.connectFailures;
      models[d.model.name] = (models[d.model.name] ?? 0) + 1;
    }
    return {
      devices: this.devices.length,
      connected: this.online.size,
      started: this.startedCount,
      connects,
      reconnects,
      connectFailures,
      valuesSent,
      valuesPublished,
      valuesFailed,
      ticks: this.wheel.fired,
      maxLagMs: Math.round(this.wheel.maxLagMs * 10) / 10,
      targetRate: Math.round(this.targetRate * 10) / 10,
      atMs: performance.now(),
      startedAtMs: this.startedAt,
      models,
    };
  }

  /** How many devices run each firmware version (their active slot's). */
  firmwareVersions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const d of this.devices) out[d.firmwareVersion] = (out[d.firmwareVersion] ?? 0) + 1;
    return out;
  }

  /** OTA totals over the fleet (firmware/ota/updater.ts OtaStats). */
  otaStats(): { received: number; malformed: number; started: number; updated: number; failed: number; refused: number; reports: number } {
    const t = { received: 0, malformed: 0, started: 0, updated: 0, failed: 0, refused: 0, reports: 0 };
    for (const d of this.devices) {
      const s = d.ota.stats;
      t.received += s.received;
      t.malformed += s.malformed;
      t.started += s.started;
      t.updated += s.updated;
      t.failed += s.failed;
      t.refused += s.refused;
      t.reports += s.reports;
    }
    return t;
  }

  /** Value messages published (acknowledged) per device and "node/property". */
  counts(): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const d of this.devices) out.set(d.deviceId, d.counters().published);
    return out;
  }

  /** Value messages per second sent over the next `ms` (the achieved rate). */
  async measureRate(ms: number): Promise<number> {
    const a = this.stats();
    await new Promise((r) => setTimeout(r, ms));
    const b = this.stats();
    return ((b.valuesSent - a.valuesSent) * 1000) / (b.atMs - a.atMs);
  }
}
