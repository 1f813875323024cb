// The bridge, assembled: MQTT intake → batches → one Postgres transaction per batch → PUBACKs,
// plus the side jobs (alert-rule cache, config re-send, log retention, online count, metrics).
// `startBridge` runs it in-process: bridge/main.ts for the real process, tests and benchmarks.
import pg from 'pg';
import type { Logger } from '../runtime/logger';
import { Registry, serveMetrics, type MetricsServer } from '../runtime/metrics';
import { ALERT_RULES_CHANNEL, loadEnabledRules } from '../db/repositories/alerts';
import { countOnline, findDevices } from '../db/repositories/device-state';
import { RuleCache } from './alert-rules';
import { republishPendingConfigs } from './config-push';
import { DeviceCache } from './device-cache';
import { loadPropertyKeys } from '../db/repositories/device-properties';
import { createAdmission } from './property-admission';
import { DEFAULT_PROPERTY_CAPS, type PropertyCaps } from './property-caps';
import { DropLog } from './drops';
import { topics } from '../domain/topics';
import { Intake, defaultBridgeClientId, type AckMode } from './intake';
import { LogRetention } from './log-retention';
import { createBridgeMetrics, MESSAGE_KINDS, ROW_TABLES, type BridgeMetrics } from './metrics';
import { Pipeline } from './pipeline';
import { buildPlan, type PlanContext, type WritePlan } from './plan';
import type { RawBatch } from './raw-batch';
import { createWorkflowEvents, type SignalRoute, type Signaller } from './workflow-events';
import { classifyFailure, writePlan, type WriteResult } from './writer';
import { createBatchWriter } from './batch-writer';
import { committedPackets, withoutRedelivered } from './redelivery';

export interface BridgeOptions {
  databaseUrl: string;
  mqttUrl: string;
  mqttUsername?: string;
  mqttPassword?: string;
  /** MQTT 5 shared-subscription group (BRIDGE_SHARE_GROUP). Default `rdm-bridge`. */
  group?: string;
  /** Stable per bridge instance (its session at the broker). Default `rdm-bridge-<hostname>`. */
  clientId?: string;
  /** 'auto' (default): MQTT 5, falling back to 3.1.1 when the broker refuses it. */
  protocol?: 'auto' | 5 | 4;
  /**
   * How long the broker keeps the session (and queues messages) while the bridge is away. Default
   * 600 s: long enough for a restart. Not longer on purpose: a broker keeps handing an offline
   * member of a share group its part of the stream until the session expires (Mosquitto 2 does),
   * so a bridge that never comes back would swallow its share for that long.
   */
  sessionExpirySeconds?: number;
  /** 'durable' (default): PUBACK after commit. 'on-receive': mqtt.js acks at once (flush on shutdown). */
  ackMode?: AckMode;
  /** Messages per batch (BRIDGE_BATCH_ROWS). Default 5000. */
  batchRows?: number;
  /** Longest a message waits for its batch to be sealed (BRIDGE_FLUSH_MS). Default 50. */
  flushMs?: number;
  /** Messages held before reading stops (BRIDGE_MAX_BUFFERED). Default 50000. */
  maxBuffered?: number;
  /** Batches written concurrently. Default 2. */
  maxInFlight?: number;
  /** last_seen_at written at most once per device per this many ms (0: every batch). Default 1000. */
  lastSeenResolutionMs?: number;
  /** Log retention (LOG_RETENTION_*); false turns it off. */
  logRetention?: { days: number; perDevice: number; intervalMs?: number } | false;
  /** How often the alert-rule cache reloads (it also reloads when notified). Default 5000. */
  rulesRefreshMs?: number;
  /** How often rdm_devices_online is recounted. Default 15000. */
  onlineCountMs?: number;
  logger: Logger;
  metrics?: Registry;
  /** Serve /metrics and /healthz on this port (0: a free one); undefined: no server. */
  metricsPort?: number;
  metricsHost?: string;
  /** Temporal signaller for device events a workflow waits on (workflow-events.ts). */
  signaller?: Signaller;
  signalRoutes?: readonly SignalRoute[];
  /** Nodes a device may have stored (BRIDGE_MAX_NODES_PER_DEVICE); property-caps.ts. Default 64. */
  maxNodesPerDevice?: number;
  /** Properties per node (BRIDGE_MAX_PROPERTIES_PER_NODE). Default 128. */
  maxPropertiesPerNode?: number;
  /** Device and node attributes one device may have stored (BRIDGE_MAX_ATTRIBUTES_PER_DEVICE). Default 256. */
  maxAttributesPerDevice?: number;
  /** Clock (ms since the epoch) for receive times. */
  now?: () => number;
  /** For tests: runs before each batch is written (block it to model a slow database, throw to fail it). */
  beforeWrite?: (batch: { seq: number; size: number }) => Promise<void> | void;
  poolSize?: number;
}

export interface BridgeStats {
  protocol: 5 | 4 | null;
  connected: boolean;
  paused: boolean;
  received: number;
  /** Messages whose batch is committed (or finally dropped) and acknowledged. */
  committed: number;
  buffered: number;
  dropped: number;
  inFlightBatches: number;
  queuedBatches: number;
  batches: number;
  telemetryRows: number;
  acksSent: number;
  acksDropped: number;
  /** Messages the broker sent again (DUP) that were already committed: acknowledged, not stored. */
  redeliveredSkipped: number;
}

export interface Bridge {
  readonly clientId: string;
  readonly metrics: BridgeMetrics;
  /** `http://host:port` of the metrics server, when one was asked for. */
  readonly metricsUrl: string | null;
  stats(): BridgeStats;
  /** Writes everything received so far; resolves once it is committed and acknowledged. */
  flush(): Promise<void>;
  /** Reloads the alert rules now. */
  refreshRules(): Promise<void>;
  /**
   * Stops. Default: stop reading, write and acknowledge what was read, disconnect (the session
   * stays at the broker), close the pool. `{ flush: false }` is a crash: the socket is dropped
   * and nothing unwritten is acknowledged (the broker sends it again to the next bridge session).
   */
  stop(opts?: { flush?: boolean }): Promise<void>;
}

export async function startBridge(o: BridgeOptions): Promise<Bridge> {
  const log = o.logger;
  const now = o.now ?? Date.now;
  const metrics = createBridgeMetrics(o.metrics ?? new Registry());
  const clientId = o.clientId ?? defaultBridgeClientId();
  const maxInFlight = o.maxInFlight ?? 2;
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: o.poolSize ?? maxInFlight + 3, idleTimeoutMillis: 30_000 });
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle Postgres connection failed'));

  const drops = new DropLog(metrics, log, now);
  const devices = new DeviceCache((ids) => findDevices(pool, ids), { now, loadProperties: (ids) => loadPropertyKeys(pool, ids) });
  const caps: PropertyCaps = {
    maxNodes: o.maxNodesPerDevice ?? DEFAULT_PROPERTY_CAPS.maxNodes,
    maxPropertiesPerNode: o.maxPropertiesPerNode ?? DEFAULT_PROPERTY_CAPS.maxPropertiesPerNode,
    maxAttributes: o.maxAttributesPerDevice ?? DEFAULT_PROPERTY_CAPS.maxAttributes,
  };
  const admit = createAdmission(pool, devices, () => caps, now);
  const rules = new RuleCache(() => loadEnabledRules(pool), log, o.rulesRefreshMs ?? 5_000);
  const events = createWorkflowEvents({
    signaller: o.signaller,
    routes: o.signalRoutes,
    statusOf: async (ids) => new Map((await pool.query<{ id: string; status: string }>('SELECT id, status FROM devices WHERE id = ANY ($1::text[])', [ids])).rows.map((r) => [r.id, r.status])),
    log,
    onResult: (result) => metrics.signals.inc({ result }),
  });
  const retention =
    o.logRetention === false || o.logRetention === undefined
      ? null
      : new LogRetention({ pool, days: o.logRetention.days, perDevice: o.logRetention.perDevice, intervalMs: o.logRetention.intervalMs, log, now, onPruned: (n) => metrics.logsPruned.inc(n) });
  const lastSeenWritten = new Map<string, number>();
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    background.add(p);
    void p.finally(() => background.delete(p));
  };
  let aborted = false;
  let stopping: Promise<void> | null = null;
  let batches = 0;
  let telemetryRows = 0;
  let droppedTotal = 0;
  let redeliveredSkipped = 0;
  let lastProgress = now(); // a batch finished (or nothing was waiting)

  const ctx = (): PlanContext => ({
    devices,
    rules: rules.current,
    wants: events.wants,
    lastSeenResolutionMs: o.lastSeenResolutionMs ?? 1_000,
    lastSeenWritten,
    caps,
    admit,
    now,
  });

  function afterCommit(plan: WritePlan, result: WriteResult): void {
    batches++;
    lastProgress = now();
    metrics.batchSize.observe(plan.messages);
    for (const k of MESSAGE_KINDS) if (plan.kinds[k] > 0) metrics.messages[k].inc(plan.kinds[k]);
    for (const t of ROW_TABLES) if (result.rows[t] > 0) metrics.rows[t].inc(result.rows[t]);
    telemetryRows += result.rows.telemetry;
    if (result.alertsRaised.device) metrics.alertsRaised.device.inc(result.alertsRaised.device);
    if (result.alertsRaised.rule) metrics.alertsRaised.rule.inc(result.alertsRaised.rule);
    for (const [reason, d] of plan.drops.counts) drops.drop(reason, d.example, d.count, d.detail);
    droppedTotal += plan.drops.total;
    const refused = result.refusedAttributes;
    if (refused.count > 0) {
      drops.drop('too_many_attributes', topics.deviceAll(refused.deviceId!), refused.count, `at most ${caps.maxAttributes} attributes per device`);
      droppedTotal += refused.count;
    }
    for (const [id, at] of plan.seen) lastSeenWritten.set(id, at);
    if (plan.unlisted.deviceIds.length > 0) devices.forgetProperties(plan.unlisted.deviceIds); // rows went: count them again
    if (plan.logDevices.length > 0) retention?.noteDevices(plan.logDevices);
    if (plan.readyDevices.length > 0) {
      track(
        republishPendingConfigs(pool, plan.readyDevices, (topic, payload, opts) => intake.publish(topic, payload, opts), now).then(
          (n) => n > 0 && metrics.configRepublished.inc(n),
          (err: Error) => log.warn({ err: err.message, devices: plan.readyDevices.length }, 'could not re-send pending configurations'),
        ),
      );
    }
    if (plan.events.length > 0) track(events.dispatch(plan.events));
  }

  /** One try: plan, one transaction, after-commit work. Failures go to the batch writer. */
  async function attempt(original: RawBatch): Promise<void> {
    const timer = metrics.batchSeconds.startTimer();
    const { batch: raw, skipped } = await withoutRedelivered(pool, clientId, original);
    const plan = await buildPlan(raw, ctx());
    const client = await pool.connect();
    let result: WriteResult;
    try {
      result = await writePlan(client, plan, { clientId, ...committedPackets(raw) });
    } catch (err) {
      client.release(classifyFailure(err) === 'transient' ? (err as Error) : undefined);
      throw err;
    }
    client.release();
    timer();
    metrics.batches.inc({ result: 'ok' });
    if (skipped > 0) {
      redeliveredSkipped += skipped;
      metrics.redeliveredSkipped.inc(skipped);
    }
    try {
      afterCommit(plan, result);
    } catch (err) {
      log.error({ err }, 'after-commit bookkeeping failed'); // committed: never write it again
    }
  }

  const writeRaw = createBatchWriter({
    attempt,
    onMissingReference: async () => {
      devices.forget(); // a device (or rule) is gone: look them up again
      await rules.refresh();
    },
    onPoison: (raw, err) => {
      drops.drop('write_failed', raw.topics[0] ?? '', raw.size, err.message);
      droppedTotal += raw.size;
    },
    onFailure: (kind) => metrics.batches.inc({ result: kind === 'transient' ? 'retry' : kind }),
    isAborted: () => aborted,
    log,
    now,
  });

  const pipeline: Pipeline = new Pipeline({
    batchRows: o.batchRows ?? 5_000,
    flushMs: o.flushMs ?? 50,
    maxBuffered: o.maxBuffered ?? 50_000,
    maxInFlight,
    now,
    write: async (raw) => {
      metrics.inFlight.inc();
      try {
        if (o.beforeWrite) await o.beforeWrite({ seq: raw.seq, size: raw.size });
        await writeRaw(raw);
      } finally {
        metrics.inFlight.dec();
      }
    },
    committed: (raw) => intake.ack(raw.ackIds, raw.ackConns),
    drained: () => intake.resume(),
  });
  metrics.buffered.collect((g) => g.set(pipeline.buffered));
  metrics.paused.collect((g) => g.set(intake.paused ? 1 : 0));

  const intake: Intake = new Intake({
    url: o.mqttUrl,
    clientId,
    group: o.group ?? 'rdm-bridge',
    protocol: o.protocol,
    sessionExpirySeconds: o.sessionExpirySeconds ?? 600,
    ackMode: o.ackMode ?? 'durable',
    username: o.mqttUsername,
    password: o.mqttPassword,
    log,
    onMessage: (packet, conn) =>
      pipeline.add(packet.topic, packet.payload as Buffer, !packet.retain, packet.qos > 0 ? packet.messageId! : 0, conn, packet.qos > 0 && packet.dup),
    isFull: () => pipeline.isFull(),
    onConnectionChange: (c) => metrics.connected.set(c ? 1 : 0),
  });

  // Alert-rule changes: LISTEN on a connection of its own (reconnected), on top of the timer.
  let listener: pg.Client | null = null;
  let listenTimer: NodeJS.Timeout | null = null;
  const listen = async (): Promise<void> => {
    if (stopping) return;
    const c = new pg.Client({ connectionString: o.databaseUrl });
    const retry = () => {
      if (listener === c) listener = null;
      c.end().catch(() => undefined);
      if (!stopping && !listenTimer) listenTimer = setTimeout(() => ((listenTimer = null), void listen()), 5_000);
    };
    c.on('error', retry);
    c.on('notification', () => void rules.refresh());
    try {
      await c.connect();
      await c.query(`LISTEN ${ALERT_RULES_CHANNEL}`);
      listener = c;
      if (stopping) await c.end();
    } catch {
      retry();
    }
  };

  const countOnlineNow = () =>
    countOnline(pool).then(
      (n) => metrics.devicesOnline.set(n),
      (err: Error) => log.debug({ err: err.message }, 'could not count online devices'),
    );

  await rules.start();
  await listen();
  await intake.start();
  track(countOnlineNow());
  const onlineTimer = setInterval(() => track(countOnlineNow()), o.onlineCountMs ?? 15_000);
  onlineTimer.unref();
  retention?.start();

  let server: MetricsServer | null = null;
  const stats = (): BridgeStats => ({
    protocol: intake.protocol,
    connected: intake.connected,
    paused: intake.paused,
    received: pipeline.received,
    committed: pipeline.committedMessages,
    buffered: pipeline.buffered,
    dropped: droppedTotal,
    inFlightBatches: pipeline.inFlightBatches,
    queuedBatches: pipeline.queuedBatches,
    batches,
    telemetryRows,
    acksSent: intake.acksSent,
    acksDropped: intake.acksDropped,
    redeliveredSkipped,
  });
  if (o.metricsPort !== undefined) {
    server = await serveMetrics(metrics.registry, {
      port: o.metricsPort,
      host: o.metricsHost,
      // Unhealthy when the broker is gone, or when messages wait and nothing was written for a minute.
      health: () => {
        if (pipeline.buffered === 0) lastProgress = now();
        return { ok: intake.connected && now() - lastProgress < 60_000, detail: stats() };
      },
    });
  }
  log.info({ clientId, protocol: intake.protocol, metrics: server?.url ?? null }, 'bridge running');

  return {
    clientId,
    metrics,
    metricsUrl: server?.url ?? null,
    stats,
    flush: () => pipeline.flush(),
    refreshRules: () => rules.refresh(),
    stop: (opts = {}) =>
      (stopping ??= (async () => {
        const graceful = opts.flush ?? true;
        clearInterval(onlineTimer);
        if (listenTimer) clearTimeout(listenTimer);
        rules.stop();
        if (graceful) {
          intake.stopReading();
          await pipeline.flush();
          await Promise.allSettled([...background]);
          await intake.end(true);
        } else {
          aborted = true;
          pipeline.abandon();
          await intake.end(false);
        }
        await retention?.stop();
        await listener?.end().catch(() => undefined);
        await server?.close();
        await pool.end().catch(() => undefined);
        log.info({ graceful, ...stats() }, 'bridge stopped');
      })()),
  };
}
