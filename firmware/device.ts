// One simulated device speaking the MQTT contract (design/contract.md "MQTT", firmware/README.md):
// Homie 4.0 or 3.0.1 description and values, `/set` commands echoed, and the `$rdm` management
// extension (desired/reported configuration, logs, diagnostic commands). It keeps simulating while
// the broker is away and reconnects with its own exponential backoff.
//
// The same class runs alone (firmware/main.ts, its own publish timer) and by the thousand in the
// fleet simulator (firmware/fleet.ts drives `tick()` from one shared timer wheel), so the publish
// path allocates as little as it can: topics, publish options and callbacks are built once.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { IClientOptions, IPublishPacket, MqttClient, PacketCallback } from 'mqtt';
import { LOG_LEVELS, parseCommand, parseDesiredConfig, parseOwner, parsePairingRequest, type CommandResultMessage, type LogLevel, type LogMessage, type PairingRequestMessage, type PairingResponseMessage, type Settings } from '../domain/device-messages';
import { encodeValue, type DeviceState, type HomieValue, type ValueCheck } from '../domain/homie';
import { isDeviceId } from '../domain/ids';
import type { OtaReportMessage } from '../domain/ota';
import { deviceInboundFilters, parseTopic, topics } from '../domain/topics';
import { connectMqtt } from '../runtime/mqtt-client';
import { deviceMqttUsername } from '../domain/broker-identity';
import type { Logger } from '../runtime/logger';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import { runDiagnostic, type DiagnosticsHost, type SelfTestCheck } from './diagnostics';
import { describeDevice, IMPLEMENTATION, simulatedMac, type HomieMode } from './homie-description';
import { LogRing } from './log-ring';
import { DevicePairing, type PairingMode } from './pairing';
import { OtaUpdater, type OtaHost, type OtaMode, type OtaStatus, type OtaTuning } from './ota/updater';
import { getModel } from './models';
import { createRng, hashSeed } from './models/rng';
import { Simulation, type SimProperty } from './models/simulation';
import type { DeviceModel, SettingSpec } from './models/types';
import { applySettings, defaultSettings, mergePatch, settingSpecs } from './settings';
import { StateStore } from './state-store';
import { FIRMWARE_VERSION } from './version';

export type { HomieMode };

export interface DeviceOptions {
  deviceId: string;
  /** The broker login's username (devices.csv `mqtt_username`). Default: the Homie ID (the device ID in lowercase). */
  mqttUsername?: string;
  secret: string;
  mqttUrl: string;
  /** A registered model name (firmware/models) or a model object. */
  model: string | DeviceModel;
  homie?: HomieMode;
  /** Every value is published this often, and simulated time advances by it per step. Default 5000. */
  publishIntervalMs?: number;
  /** Values' QoS (description, state, config and command answers are always QoS 1). Default 1. */
  qos?: 0 | 1;
  /** Seeds the simulation and the reconnect jitter. Default: the device ID. */
  seed?: number | string;
  /** Keeps values and settings in `<stateDir>/<deviceId>.json` across restarts. */
  stateDir?: string | null;
  /** `$name`. Default "<model title> <device ID>". */
  name?: string;
  /** 'values-only' skips nodes and properties in the announcement (fleet bench mode). Default 'full'. */
  announce?: 'full' | 'values-only';
  /** Subscribe to /set, desired config and commands. Default true. */
  subscribe?: boolean;
  /** Run the device's own publish timer. The fleet turns it off and calls tick(). Default true. */
  autoTick?: boolean;
  backoff?: Partial<BackoffOptions>;
  /** How long a reboot keeps the device off the network. Default 1000 ms. */
  rebootDelayMs?: number;
  keepaliveS?: number;
  connectTimeoutMs?: number;
  /** MQTT 3.1.1 (4, default: every broker the platform runs speaks it) or 5. */
  protocolVersion?: 4 | 5;
  /** Libraries that choose their own client ID must work too (contract); default the device ID. */
  clientId?: string;
  /** The factory firmware's version (slot a of a device never updated); afterwards the active slot's. */
  firmwareVersion?: string;
  logRingSize?: number;
  /** Mirrors the device's log records (the CLI's pino logger). */
  logger?: Logger;
  /** A pairing request waits for the button (pressButton(), default), or is answered at once. */
  pairing?: PairingMode;
  /** The platform's OTA public key (SPKI PEM, Ed25519); without it every update is refused `no-public-key`. */
  otaPublicKey?: string | null;
  /** OTA updates for real ('full', default) or every step at once with no download and no reboot ('instant', fleets). */
  ota?: OtaMode;
  /** Failure injection: a new firmware's health check fails whatever its image says. */
  otaFailHealthCheck?: boolean;
  otaTuning?: OtaTuning;
}

export type ConnectionStatus = 'stopped' | 'connecting' | 'online' | 'offline' | 'rebooting';
export type ChangeSource = 'mqtt' | 'local';

export interface DeviceEvents {
  /** Announced (init → ready/alert) on a connection. */
  connected: { reconnect: boolean; connects: number };
  /** An established connection was lost (not after stop()/kill()/reboot). */
  disconnected: { reason: string };
  'connect-error': { error: Error };
  'reconnect-scheduled': { attempt: number; delayMs: number };
  'set-applied': { node: string; property: string; value: HomieValue; payload: string; source: ChangeSource };
  'set-rejected': { node: string; property: string; input: string; reason: string; source: ChangeSource };
  'config-applied': { version: number | null; settings: Settings; rejected: { key: string; reason: string }[]; source: ChangeSource };
  command: { requestId: string; command: string; answer: CommandResultMessage };
  state: { state: DeviceState };
  reboot: { bootCount: number };
  log: LogMessage;
  stopped: Record<string, never>;
  'pairing-request': PairingRequestMessage;
  'pairing-answered': PairingResponseMessage;
  owner: { ownerId: string | null };
  /** Every OTA step reported (published when connected). */
  ota: OtaReportMessage;
}
type EventName = keyof DeviceEvents;
type Listener<K extends EventName> = (arg: DeviceEvents[K]) => void;

export interface PropertySnapshot {
  node: string;
  property: string;
  name: string;
  datatype: string;
  format: string | null;
  unit: string | null;
  settable: boolean;
  value: HomieValue;
  payload: string;
}

export interface DeviceSnapshot {
  deviceId: string;
  model: string;
  homie: HomieMode;
  name: string;
  firmware: { name: string; version: string };
  state: DeviceState;
  alert: string | null;
  connection: { status: ConnectionStatus; mqttUrl: string; connects: number; reconnects: number; lastError: string | null; retryAttempt: number };
  uptimeMs: number;
  values: PropertySnapshot[];
  config: { version: number | null; settings: Settings };
  effectiveSettings: Settings;
  pairing: { pending: PairingRequestMessage | null; owner: string | null };
  ota: OtaStatus;
}

export interface DeviceCounters {
  /** Value messages handed to the client, per "node/property". */
  sent: Record<string, number>;
  /** Acknowledged (QoS 1) or written (QoS 0), per "node/property". */
  published: Record<string, number>;
  failed: Record<string, number>;
  /** Everything else published (description, state, config, logs, answers). */
  other: number;
  connects: number;
  reconnects: number;
  connectFailures: number;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const MAX_PENDING_LOGS = 100;
const MAX_SEEN_REQUESTS = 256;
const GRACEFUL_TIMEOUT_MS = 3_000;
const QOS1_RETAINED = { qos: 1, retain: true } as const;
const QOS1 = { qos: 1, retain: false } as const;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer));
}

// Typed events on top of EventEmitter (declaration merging with the class below). The interface
// only narrows methods the class inherits, so nothing declared here is left unimplemented.
// (EventEmitter<Map> cannot type waitFor's generic listener.)
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export declare interface Device {
  on<K extends EventName>(event: K, listener: Listener<K>): this;
  once<K extends EventName>(event: K, listener: Listener<K>): this;
  off<K extends EventName>(event: K, listener: Listener<K>): this;
  emit<K extends EventName>(event: K, arg: DeviceEvents[K]): boolean;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Device extends EventEmitter {
  readonly deviceId: string;
  readonly model: DeviceModel;
  readonly homie: HomieMode;
  readonly name: string;
  readonly sim: Simulation;
  /** OTA updates and the firmware slots (firmware/ota/). */
  readonly ota: OtaUpdater;

  private readonly o: DeviceOptions;
  private readonly specs: Record<string, SettingSpec>;
  private readonly backoffOpts: BackoffOptions;
  private readonly jitter: () => number;
  private readonly store: StateStore | null;
  private readonly ring: LogRing;
  private readonly mac: string;
  private readonly stateTopic: string;
  private readonly valueTopics: string[];
  private readonly valueOpts: { qos: 0 | 1; retain: boolean }[];
  private readonly valueDone: PacketCallback[];
  private readonly sentCounts: Float64Array;
  private readonly publishedCounts: Float64Array;
  private readonly failedCounts: Float64Array;

  private client: MqttClient | null = null;
  /** Bumped per connection attempt: events of an older client are ignored. */
  private epoch = 0;
  private status: ConnectionStatus = 'stopped';
  private running = false;
  private rebooting = false;
  private announced = false;
  private homieState: DeviceState = 'init';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private nextTickAt = 0;
  private bootAt = performance.now();
  private bootCount = 0;
  private lostConnection = false;
  private lastError: string | null = null;
  private connects = 0;
  private reconnects = 0;
  private connectFailures = 0;
  private otherPublished = 0;
  /** Simulation steps so far (they go on while offline). */
  steps = 0;

  private configVersion: number | null = null;
  private settings: Settings = {};
  private effective: Settings;
  private manualAlert: string | null = null;
  private autoAlert: string | null = null;
  private readonly faults = new Map<number, string>();
  private readonly pendingLogs: LogMessage[] = [];
  private readonly seenRequests = new Set<string>();
  private readonly reader: (node: string, property: string) => HomieValue;
  private readonly pairing: DevicePairing;

  constructor(options: DeviceOptions) {
    super();
    if (!isDeviceId(options.deviceId)) throw new Error(`"${options.deviceId}" is not a device ID (12 Crockford base32 characters, uppercase)`);
    if (options.publishIntervalMs !== undefined && !(options.publishIntervalMs > 0 && Number.isFinite(options.publishIntervalMs))) {
      throw new Error(`publishIntervalMs must be a positive number, not ${options.publishIntervalMs}`);
    }
    this.o = { ...options };
    this.deviceId = options.deviceId;
    this.model = typeof options.model === 'string' ? getModel(options.model) : options.model;
    this.homie = options.homie ?? '4.0';
    this.name = options.name ?? `${this.model.title} ${this.deviceId}`;
    this.specs = settingSpecs(this.model);
    this.backoffOpts = { ...DEFAULT_BACKOFF, ...options.backoff };
    const seed = options.seed ?? this.deviceId;
    this.jitter = createRng(`${seed}:backoff`);
    this.mac = simulatedMac(hashSeed(this.deviceId));
    this.ring = new LogRing(options.logRingSize ?? 200);
    this.store = options.stateDir ? new StateStore(options.stateDir, this.deviceId) : null;
    this.effective = this.computeEffective();
    this.sim = new Simulation(this.model, createRng(seed), () => this.effective);
    this.reader = (node, property) => this.sim.get(node, property);
    this.pairing = new DevicePairing(options.pairing ?? 'button');

    // Everything the publish path needs, built once.
    const qos = options.qos ?? 1;
    this.stateTopic = topics.state(this.deviceId);
    this.valueTopics = this.sim.props.map((p) => topics.property(this.deviceId, p.node.id, p.property.id));
    this.valueOpts = this.sim.props.map((p) => ({ qos, retain: p.property.retained ?? true }));
    const n = this.sim.props.length;
    this.sentCounts = new Float64Array(n);
    this.publishedCounts = new Float64Array(n);
    this.failedCounts = new Float64Array(n);
    this.valueDone = this.sim.props.map((_, i) => (err?: Error) => {
      if (err) this.failedCounts[i]!++;
      else this.publishedCounts[i]!++;
    });

    this.restoreState();
    this.ota = new OtaUpdater(this.otaHost(), {
      mode: options.ota,
      publicKeyPem: options.otaPublicKey,
      stateDir: options.stateDir,
      factoryVersion: options.firmwareVersion ?? FIRMWARE_VERSION,
      failHealthCheck: options.otaFailHealthCheck,
      tuning: options.otaTuning,
      jitter: createRng(`${seed}:ota`),
      onReport: (r) => this.emit('ota', r),
    });
  }

  /** The running firmware's version: the active slot's (`$fw/version`). */
  get firmwareVersion(): string {
    return this.ota.runningVersion;
  }

  private otaHost(): OtaHost {
    return {
      deviceId: this.deviceId,
      auth: { username: this.o.mqttUsername ?? deviceMqttUsername(this.deviceId), password: this.o.secret },
      publish: (topic, payload, retain) => {
        const c = this.client;
        if (!c || this.status !== 'online') return Promise.resolve(false);
        this.otherPublished++;
        // Bounded: a connection that dies with the message in flight must not hold an update up.
        return withTimeout(c.publishAsync(topic, payload, { qos: 1, retain }).then(() => true, () => false), GRACEFUL_TIMEOUT_MS).then((ok) => ok ?? false);
      },
      log: (level, message, fields) => this.log(level, message, fields),
      reboot: () => this.reboot(),
    };
  }

  // ---------------------------------------------------------------- lifecycle

  /** Boots the device: starts simulating and connecting. Returns at once (the broker may be away). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.boot();
  }

  /** Resolves once announced on a connection (at once when it already is). */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.status === 'online' && this.announced && this.homieState !== 'init') return Promise.resolve();
    return this.waitFor('connected', timeoutMs).then(() => undefined);
  }

  /** Graceful shutdown: `$state` = disconnected, then an MQTT DISCONNECT (no last will). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopTimers();
    await this.ota.shutdown();
    this.persist();
    await this.disconnectGracefully();
    this.status = 'stopped';
    this.emit('stopped', {});
  }

  /** Power loss: the socket is dropped without DISCONNECT, so the broker publishes the last will (`lost`). */
  kill(): void {
    this.running = false;
    this.stopTimers();
    void this.ota.shutdown(); // a download is cut where it stands (resumed at the next start)
    this.epoch++;
    const c = this.client;
    this.client = null;
    this.announced = false;
    this.status = 'stopped';
    this.homieState = 'lost'; // what the broker now says of it, through the last will
    c?.end(true);
  }

  /** Announces `disconnected`, leaves the network for rebootDelayMs and boots again (init → ready). */
  async reboot(): Promise<void> {
    if (!this.running || this.rebooting) return;
    this.rebooting = true;
    try {
      this.log('info', 'rebooting');
      this.persist();
      this.stopTimers();
      await this.ota.shutdown();
      this.emit('reboot', { bootCount: this.bootCount });
      await this.disconnectGracefully();
      if (!this.running) return; // stopped meanwhile
      this.status = 'rebooting';
      await new Promise((r) => setTimeout(r, this.o.rebootDelayMs ?? 1_000));
      if (!this.running) return;
      this.manualAlert = null; // a fresh boot forgets what an operator raised; sensors raise theirs again
      this.boot();
    } finally {
      this.rebooting = false;
    }
  }

  private boot(): void {
    this.bootAt = performance.now();
    this.bootCount++;
    this.homieState = 'init';
    this.attempt = 0;
    if (this.ota.onBoot() === 'reboot') {
      // A new firmware failed its health check at boot: back to the old slot by another reboot, never announced.
      setImmediate(() => void this.reboot());
      return;
    }
    this.checkAlert();
    if (this.o.autoTick ?? true) this.startTicking();
    this.restartStatsTimer();
    this.log('info', 'booted', { bootCount: this.bootCount, firmwareVersion: this.firmwareVersion, slot: this.ota.status().slot, model: this.model.name });
    this.connect();
  }

  get state(): DeviceState {
    return this.homieState;
  }

  get connection(): ConnectionStatus {
    return this.status;
  }

  get isOnline(): boolean {
    return this.status === 'online' && this.announced;
  }

  uptimeMs(): number {
    return Math.round(performance.now() - this.bootAt);
  }

  // ---------------------------------------------------------------- connection

  private connect(): void {
    const epoch = ++this.epoch;
    this.status = 'connecting';
    const opts: IClientOptions = {
      clientId: this.o.clientId ?? this.deviceId,
      username: this.o.mqttUsername ?? deviceMqttUsername(this.deviceId),
      password: this.o.secret,
      protocolVersion: this.o.protocolVersion ?? 4,
      clean: true,
      keepalive: this.o.keepaliveS ?? 30,
      connectTimeout: this.o.connectTimeoutMs ?? 5_000,
      reconnectPeriod: 0, // our own backoff (backoff.ts) reconnects
      queueQoSZero: false, // nothing is queued while offline: values are re-sent on reconnect
      will: { topic: this.stateTopic, payload: 'lost', qos: 1, retain: true },
    };
    // connectMqtt sets TCP_NODELAY on connect (runtime/mqtt-client.ts).
    const client = connectMqtt(this.o.mqttUrl, 'device', opts);
    this.client = client;
    client.on('connect', () => {
      if (epoch === this.epoch) void this.onConnect(client, epoch);
    });
    client.on('message', (topic, payload, packet) => {
      if (epoch === this.epoch) this.onMessage(topic, payload, packet);
    });
    client.on('error', (error) => {
      if (epoch !== this.epoch) return;
      this.lastError = error.message;
      this.emit('connect-error', { error });
    });
    client.on('close', () => {
      if (epoch === this.epoch) this.onClose(client);
    });
  }

  private async onConnect(client: MqttClient, epoch: number): Promise<void> {
    this.status = 'online';
    this.attempt = 0;
    this.lastError = null;
    this.connects++;
    const reconnect = this.lostConnection;
    if (reconnect) this.reconnects++;
    this.lostConnection = false;
    try {
      // Subscribed before `ready`, so a controller that sees ready can send /set at once.
      if (this.o.subscribe ?? true) await client.subscribeAsync(deviceInboundFilters(this.deviceId), { qos: 1 });
      if (epoch !== this.epoch) return;
      this.homieState = 'init';
      this.publishOther(this.stateTopic, 'init', QOS1_RETAINED);
      const localIp = ((client.stream as Socket).localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
      const description = describeDevice({
        deviceId: this.deviceId,
        model: this.model,
        homie: this.homie,
        name: this.name,
        firmwareName: IMPLEMENTATION,
        firmwareVersion: this.firmwareVersion,
        localIp,
        mac: this.mac,
        statsIntervalS: this.effective.statsIntervalS as number,
        detail: this.o.announce ?? 'full',
      });
      for (const [topic, payload] of description) this.publishOther(topic, payload, QOS1_RETAINED);
      this.announced = true;
      // Values simulated while offline are published now.
      for (let i = 0; i < this.valueTopics.length; i++) this.publishValue(i);
      if (this.homie === '3.0') this.publishUptime();
      this.reportConfig();
      for (const rec of this.pendingLogs.splice(0)) this.publishLog(rec);
      const final: DeviceState = this.alertReason() ? 'alert' : 'ready';
      this.homieState = final;
      // Mosquitto handles a connection's packets in order: this ack means all of the above arrived.
      await client.publishAsync(this.stateTopic, final, QOS1_RETAINED);
      this.otherPublished++;
      if (epoch !== this.epoch) return;
      this.emit('state', { state: final });
      this.log('info', reconnect ? 'reconnected' : 'connected', { broker: this.o.mqttUrl });
      this.emit('connected', { reconnect, connects: this.connects });
      this.ota.onConnected();
    } catch (err) {
      // The connection went away mid-announcement: the close handler reconnects.
      if (epoch === this.epoch) this.lastError = (err as Error).message;
    }
  }

  private onClose(client: MqttClient): void {
    const wasOnline = this.status === 'online';
    this.epoch++;
    this.client = null;
    this.announced = false;
    client.end(true);
    if (!this.running || this.status === 'rebooting') return;
    this.status = 'offline';
    if (wasOnline) {
      this.lostConnection = true;
      this.log('warn', 'connection lost', { broker: this.o.mqttUrl });
      this.emit('disconnected', { reason: this.lastError ?? 'connection closed' });
    } else {
      this.connectFailures++;
    }
    const delayMs = backoffDelay(this.attempt, this.backoffOpts, this.jitter);
    this.attempt++;
    this.emit('reconnect-scheduled', { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.running && this.status === 'offline') this.connect();
    }, delayMs);
  }

  private async disconnectGracefully(): Promise<void> {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const c = this.client;
    const wasOnline = this.status === 'online';
    this.epoch++;
    this.client = null;
    this.announced = false;
    this.status = 'offline';
    if (!c) return;
    if (wasOnline) {
      this.homieState = 'disconnected';
      await withTimeout(
        c.publishAsync(this.stateTopic, 'disconnected', QOS1_RETAINED).catch(() => undefined),
        GRACEFUL_TIMEOUT_MS,
      );
      this.otherPublished++;
      this.emit('state', { state: 'disconnected' });
    }
    if (!wasOnline) {
      c.end(true); // still connecting: nothing to say goodbye on
      return;
    }
    const ended = await withTimeout(new Promise<true>((resolve) => c.end(false, {}, () => resolve(true))), GRACEFUL_TIMEOUT_MS);
    if (!ended) (c.stream as Socket | undefined)?.destroy();
  }

  // ---------------------------------------------------------------- publishing

  private publishOther(topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }): void {
    const c = this.client;
    if (!c || this.status !== 'online') return;
    this.otherPublished++;
    c.publish(topic, payload, opts);
  }

  /** The hot path: no allocation of ours (topic, options and callback are pre-built). */
  private publishValue(i: number): void {
    const c = this.client;
    if (c === null || !this.announced) return;
    this.sentCounts[i]!++;
    c.publish(this.valueTopics[i]!, this.sim.payloads[i]!, this.valueOpts[i]!, this.valueDone[i]!);
  }

  private publishUptime(): void {
    this.publishOther(topics.deviceAttribute(this.deviceId, 'stats/uptime'), String(Math.floor(this.uptimeMs() / 1000)), QOS1_RETAINED);
  }

  private reportConfig(): void {
    this.publishOther(topics.configReported(this.deviceId), JSON.stringify({ version: this.configVersion ?? 0, settings: this.settings }), QOS1_RETAINED);
  }

  private publishLog(rec: LogMessage): void {
    this.publishOther(topics.log(this.deviceId), JSON.stringify(rec), QOS1);
  }

  /**
   * One simulation step of publishIntervalMs, then every value published (when connected).
   * Called by the device's own timer, or by the fleet's timer wheel.
   */
  tick(): void {
    this.steps++;
    this.sim.step(this.effective.publishIntervalMs as number);
    this.checkAlert();
    if (this.announced) for (let i = 0; i < this.valueTopics.length; i++) this.publishValue(i);
  }

  /** The fleet sets the pace: the step's simulated time follows it. */
  setPublishInterval(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) throw new Error(`publishIntervalMs must be a positive number, not ${ms}`);
    this.o.publishIntervalMs = ms;
    this.effective = this.computeEffective();
    if (this.tickTimer) this.startTicking();
  }

  private startTicking(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.nextTickAt = performance.now();
    this.scheduleTick();
  }

  // A chain of timeouts aimed at exact multiples of the interval: setInterval drifts by the time
  // each callback takes, and the fleet benchmark reads the rate off these ticks.
  private scheduleTick(): void {
    const interval = this.effective.publishIntervalMs as number;
    const now = performance.now();
    this.nextTickAt += interval;
    if (this.nextTickAt < now - 10 * interval) this.nextTickAt = now + interval; // after a long stall, no burst
    this.tickTimer = setTimeout(this.onTickTimer, Math.max(0, this.nextTickAt - now));
  }

  private readonly onTickTimer = (): void => {
    this.tick();
    if (this.tickTimer) this.scheduleTick();
  };

  private restartStatsTimer(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    if (this.homie !== '3.0' || !this.running) return;
    this.statsTimer = setInterval(() => this.publishUptime(), (this.effective.statsIntervalS as number) * 1000);
    this.statsTimer.unref();
  }

  private stopTimers(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.tickTimer = this.statsTimer = this.reconnectTimer = null;
  }

  // ---------------------------------------------------------------- inbound

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const t = parseTopic(topic);
    if (!t || t.deviceId !== this.deviceId) return;
    if (t.kind === 'set') this.applySet(t.node, t.property, payload.toString('utf8'), 'mqtt');
    else if (t.kind === 'config-desired') this.onDesiredConfig(payload);
    else if (t.kind === 'command') void this.onCommand(t.requestId, payload, packet.retain);
    else if (t.kind === 'pairing-request') this.onPairingRequest(payload, packet.retain);
    else if (t.kind === 'owner') this.onOwner(payload);
    else if (t.kind === 'ota-set') this.ota.onMessage(payload);
  }

  // ---------------------------------------------------------------- pairing (firmware/pairing.ts)

  private onPairingRequest(payload: Buffer, retained: boolean): void {
    const req = retained ? null : parsePairingRequest(payload); // a request is an event, never retained
    if (!req) {
      this.log('warn', 'pairing request ignored', { retained });
      return;
    }
    this.log('info', 'pairing requested', { pairingId: req.pairingId, expiresAt: req.expiresAt });
    this.emit('pairing-request', req);
    const answer = this.pairing.onRequest(req, Date.now());
    if (answer) this.answerPairing(answer);
  }

  private onOwner(payload: Buffer): void {
    const owner = parseOwner(payload);
    if (owner === undefined) {
      this.log('warn', 'owner message ignored: malformed');
      return;
    }
    if (owner === this.pairing.owner) return;
    this.pairing.owner = owner;
    this.log('info', owner ? 'owner set' : 'owner cleared', { ownerId: owner });
    this.emit('owner', { ownerId: owner });
  }

  private answerPairing(answer: PairingResponseMessage): void {
    this.publishOther(topics.pairingResponse(this.deviceId), JSON.stringify(answer), QOS1);
    this.log('info', answer.accept ? 'pairing accepted' : 'pairing refused', { pairingId: answer.pairingId });
    this.emit('pairing-answered', answer);
  }

  /** The device's pairing button: accepts the pending request. False when none is pending. */
  pressButton(): boolean {
    const answer = this.pairing.press(Date.now());
    if (answer) this.answerPairing(answer);
    return answer !== null;
  }

  /** Refuses the pending request. False when none is pending. */
  refusePairing(): boolean {
    const answer = this.pairing.refuse(Date.now());
    if (answer) this.answerPairing(answer);
    return answer !== null;
  }

  /** The owner the platform last told this device (null: none). */
  get owner(): string | null {
    return this.pairing.owner;
  }

  setPairingMode(mode: PairingMode): void {
    this.pairing.mode = mode;
  }

  /** Validates, applies, echoes on the property topic, persists. Invalid input changes nothing. */
  private applySet(node: string, property: string, input: unknown, source: ChangeSource): ValueCheck {
    const i = this.sim.indexOf(node, property);
    const shown = typeof input === 'string' ? input : JSON.stringify(input) ?? String(input);
    const reject = (reason: string): ValueCheck => {
      this.log('warn', 'set rejected', { node, property, input: shown.slice(0, 200), reason, source });
      this.emit('set-rejected', { node, property, input: shown, reason, source });
      return { ok: false, reason };
    };
    if (i < 0) return reject('no such property');
    const spec = this.sim.props[i]!.property;
    if (!spec.settable) return reject('not settable');
    const check = encodeValue(spec, input);
    if (!check.ok) return reject(check.reason);
    this.sim.set(i, check.value);
    this.publishValue(i); // the echo that tells the platform the command took effect
    this.checkAlert();
    this.persist();
    this.log('info', 'set applied', { node, property, value: check.value, source });
    this.emit('set-applied', { node, property, value: check.value, payload: check.payload, source });
    return check;
  }

  private onDesiredConfig(payload: Buffer): void {
    if (payload.length === 0) return; // the platform cleared its retained message
    const desired = parseDesiredConfig(payload);
    if (!desired) {
      this.log('warn', 'desired configuration rejected: malformed', { payload: payload.toString('utf8').slice(0, 200) });
      return;
    }
    // The retained message comes again on every connection: a version already applied keeps the
    // settings as they are, local changes from the admin page included (they are reported as such).
    if (desired.version === this.configVersion) return;
    const { settings, rejected } = applySettings(this.specs, desired.settings, this.settings);
    this.configVersion = desired.version;
    this.useSettings(settings);
    for (const r of rejected) this.log('error', 'setting rejected', { key: r.key, reason: r.reason, version: desired.version });
    this.log('info', 'configuration applied', { version: desired.version });
    this.emit('config-applied', { version: desired.version, settings, rejected, source: 'mqtt' });
  }

  private async onCommand(requestId: string, payload: Buffer, retained: boolean): Promise<void> {
    // A retained command would run again on every connection (a reboot loop); commands are events.
    if (retained) {
      this.log('warn', 'retained command ignored', { requestId });
      return;
    }
    if (this.seenRequests.has(requestId)) return; // QoS 1 may deliver twice
    this.seenRequests.add(requestId);
    if (this.seenRequests.size > MAX_SEEN_REQUESTS) this.seenRequests.delete(this.seenRequests.values().next().value as string);
    const cmd = parseCommand(payload);
    const { answer, reboot } = runDiagnostic(this.diagnosticsHost, cmd);
    this.log(answer.ok ? 'info' : 'warn', 'command', { requestId, command: cmd?.command ?? null, ok: answer.ok });
    const c = this.client;
    if (c && this.status === 'online') {
      this.otherPublished++;
      await c.publishAsync(topics.commandResult(this.deviceId, requestId), JSON.stringify(answer), QOS1).catch(() => undefined);
    }
    this.emit('command', { requestId, command: cmd?.command ?? '', answer });
    if (reboot) await this.reboot();
  }

  private readonly diagnosticsHost: DiagnosticsHost = {
    uptimeMs: () => this.uptimeMs(),
    logs: (n) => this.ring.last(n),
    selfTest: () => this.selfTest(),
  };

  /** Each sensor's value checked against its datatype and format, plus the network and the memory. */
  selfTest(): SelfTestCheck[] {
    const checks: SelfTestCheck[] = this.sim.props.map((p, i) => {
      const fault = this.faults.get(i);
      if (fault) return { check: p.key, ok: false, detail: fault };
      const v = encodeValue(p.property, this.sim.values[i]);
      return v.ok ? { check: p.key, ok: true, detail: v.payload } : { check: p.key, ok: false, detail: v.reason };
    });
    checks.push({ check: 'mqtt', ok: this.status === 'online', detail: this.status });
    if (this.store) checks.push({ check: 'storage', ok: this.store.writable(), detail: this.store.file });
    return checks;
  }

  // ---------------------------------------------------------------- local changes (tests, admin page)

  /** A local change of any property (a sensor reading, a button): validated, published at once. */
  setSensor(node: string, property: string, value: unknown): ValueCheck {
    const i = this.sim.indexOf(node, property);
    if (i < 0) return { ok: false, reason: `no property ${node}/${property}` };
    const check = encodeValue(this.sim.props[i]!.property, value);
    if (!check.ok) return check;
    this.sim.set(i, check.value);
    this.publishValue(i);
    this.checkAlert();
    return check;
  }

  /** A settable property changed on the device itself (local admin page): same rules as `/set`. */
  setLocal(node: string, property: string, input: unknown): ValueCheck {
    return this.applySet(node, property, input, 'local');
  }

  /** Makes the self-test fail for one sensor (reason) or pass again (null). */
  setSensorFault(node: string, property: string, reason: string | null): void {
    const i = this.sim.indexOf(node, property);
    if (i < 0) throw new Error(`no property ${node}/${property}`);
    if (reason) this.faults.set(i, reason);
    else this.faults.delete(i);
  }

  /**
   * Settings changed on the device (local admin page) while the cloud may be unreachable: all or
   * nothing, kept with the version they were based on and reported when connected.
   */
  applyLocalSettings(patch: Settings, mode: 'merge' | 'replace' = 'merge'): { ok: true; settings: Settings } | { ok: false; errors: { key: string; reason: string }[] } {
    const candidate = mode === 'merge' ? mergePatch(this.settings, patch) : { ...patch };
    const { settings, rejected } = applySettings(this.specs, candidate, {});
    if (rejected.length) return { ok: false, errors: rejected };
    this.useSettings(settings);
    this.log('info', 'settings changed locally', { basedOnVersion: this.configVersion });
    this.emit('config-applied', { version: this.configVersion, settings, rejected: [], source: 'local' });
    return { ok: true, settings };
  }

  private useSettings(settings: Settings): void {
    const before = this.effective;
    this.settings = settings;
    this.effective = this.computeEffective();
    if (this.tickTimer && before.publishIntervalMs !== this.effective.publishIntervalMs) this.startTicking();
    if (before.statsIntervalS !== this.effective.statsIntervalS && this.homie === '3.0') {
      this.restartStatsTimer();
      this.publishOther(topics.deviceAttribute(this.deviceId, 'stats/interval'), String(this.effective.statsIntervalS), QOS1_RETAINED);
    }
    this.checkAlert();
    this.persist();
    this.reportConfig();
  }

  private computeEffective(): Settings {
    const base = defaultSettings(this.specs);
    if (this.o.publishIntervalMs !== undefined) base.publishIntervalMs = this.o.publishIntervalMs;
    const out = { ...base, ...this.settings };
    // Driven by a fleet, the fleet owns the pace: a configured interval is kept and reported, not used.
    if (this.o.autoTick === false && this.o.publishIntervalMs !== undefined) out.publishIntervalMs = this.o.publishIntervalMs;
    return out;
  }

  // ---------------------------------------------------------------- alerts

  /** `$state` = alert until clearAlert() (or a reboot). */
  raiseAlert(reason: string): void {
    this.manualAlert = reason;
    this.log('warn', 'alert raised', { reason });
    this.updateState();
  }

  clearAlert(): void {
    if (this.manualAlert === null) return;
    this.manualAlert = null;
    this.log('info', 'alert cleared');
    this.updateState();
  }

  alertReason(): string | null {
    return this.manualAlert ?? this.autoAlert;
  }

  private checkAlert(): void {
    if (!this.model.alert) return;
    const reason = this.model.alert(this.reader, this.effective);
    const changed = (reason === null) !== (this.autoAlert === null);
    this.autoAlert = reason;
    if (!changed) return;
    if (reason) this.log('warn', 'alert raised', { reason });
    else this.log('info', 'alert cleared');
    this.updateState();
  }

  private updateState(): void {
    if (this.homieState !== 'ready' && this.homieState !== 'alert') return; // init/disconnected: announced on connect
    const next: DeviceState = this.alertReason() ? 'alert' : 'ready';
    if (next === this.homieState) return;
    this.homieState = next;
    this.publishOther(this.stateTopic, next, QOS1_RETAINED);
    this.emit('state', { state: next });
  }

  // ---------------------------------------------------------------- logs

  /** One record: kept in the ring (read-logs), published on `$rdm/log` from the logLevel setting up. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    const rec: LogMessage = fields ? { level, message, time: new Date().toISOString(), fields } : { level, message, time: new Date().toISOString() };
    this.ring.push(rec);
    this.o.logger?.[level]({ deviceId: this.deviceId, ...fields }, message);
    this.emit('log', rec);
    const min = this.effective.logLevel as LogLevel;
    if (LEVEL_RANK[level] < LEVEL_RANK[LOG_LEVELS.includes(min) ? min : 'info']) return;
    if (this.client && this.status === 'online') this.publishLog(rec);
    else {
      this.pendingLogs.push(rec);
      if (this.pendingLogs.length > MAX_PENDING_LOGS) this.pendingLogs.shift();
    }
  }

  logs(lines?: number): LogMessage[] {
    return this.ring.last(lines);
  }

  // ---------------------------------------------------------------- state, persistence

  value(node: string, property: string): HomieValue {
    return this.sim.get(node, property);
  }

  snapshot(): DeviceSnapshot {
    return {
      deviceId: this.deviceId,
      model: this.model.name,
      homie: this.homie,
      name: this.name,
      firmware: { name: IMPLEMENTATION, version: this.firmwareVersion },
      state: this.homieState,
      alert: this.alertReason(),
      connection: {
        status: this.status,
        mqttUrl: this.o.mqttUrl,
        connects: this.connects,
        reconnects: this.reconnects,
        lastError: this.lastError,
        retryAttempt: this.attempt,
      },
      uptimeMs: this.uptimeMs(),
      values: this.sim.props.map((p: SimProperty, i) => ({
        node: p.node.id,
        property: p.property.id,
        name: p.property.name,
        datatype: p.property.datatype,
        format: p.property.format ?? null,
        unit: p.property.unit ?? null,
        settable: p.property.settable ?? false,
        value: this.sim.values[i]!,
        payload: this.sim.payloads[i]!,
      })),
      config: { version: this.configVersion, settings: { ...this.settings } },
      effectiveSettings: { ...this.effective },
      pairing: { pending: this.pairing.pending(Date.now()), owner: this.pairing.owner },
      ota: this.ota.status(),
    };
  }

  counters(): DeviceCounters {
    const sent: Record<string, number> = {};
    const published: Record<string, number> = {};
    const failed: Record<string, number> = {};
    this.sim.props.forEach((p, i) => {
      sent[p.key] = this.sentCounts[i]!;
      published[p.key] = this.publishedCounts[i]!;
      failed[p.key] = this.failedCounts[i]!;
    });
    return { sent, published, failed, other: this.otherPublished, connects: this.connects, reconnects: this.reconnects, connectFailures: this.connectFailures };
  }

  /** Totals without building objects (the fleet sums thousands of devices per stats() call). */
  totals(): { sent: number; published: number; failed: number } {
    let sent = 0;
    let published = 0;
    let failed = 0;
    for (let i = 0; i < this.sentCounts.length; i++) {
      sent += this.sentCounts[i]!;
      published += this.publishedCounts[i]!;
      failed += this.failedCounts[i]!;
    }
    return { sent, published, failed };
  }

  get stats(): { connects: number; reconnects: number; connectFailures: number } {
    return { connects: this.connects, reconnects: this.reconnects, connectFailures: this.connectFailures };
  }

  private persist(): void {
    if (!this.store) return;
    try {
      this.store.save({ deviceId: this.deviceId, model: this.model.name, values: this.sim.snapshot(), configVersion: this.configVersion, settings: this.settings });
    } catch (err) {
      this.log('error', 'cannot save state', { file: this.store.file, error: (err as Error).message });
    }
  }

  private restoreState(): void {
    const saved = this.store?.load();
    if (!saved) return;
    if (saved.model !== this.model.name) {
      this.log('warn', 'saved state is of another model: ignored', { saved: saved.model, model: this.model.name });
      return;
    }
    const skipped = this.sim.restore(saved.values);
    if (skipped.length) this.log('warn', 'saved values ignored', { keys: skipped });
    this.configVersion = saved.configVersion;
    this.settings = applySettings(this.specs, saved.settings, {}).settings;
    this.effective = this.computeEffective();
  }

  // ---------------------------------------------------------------- test helpers

  /** The next `event` (matching `predicate`), or a rejection after timeoutMs. */
  waitFor<K extends EventName>(event: K, timeoutMs = 10_000, predicate: (arg: DeviceEvents[K]) => boolean = () => true): Promise<DeviceEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(event, listener);
        reject(new Error(`device ${this.deviceId}: no "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener: Listener<K> = (arg) => {
        if (!predicate(arg)) return;
        clearTimeout(timer);
        this.off(event, listener);
        resolve(arg);
      };
      this.on(event, listener);
    });
  }
}
