// The bridge's MQTT side: one persistent-session connection that reads every device's traffic,
// hands each message over, stops reading when the bridge is full (backpressure) and acknowledges
// a QoS 1 message only once its batch is committed (durable acknowledgement).
//
// - MQTT 5 with a shared subscription (`$share/<group>/homie/+/#`): N bridges split the stream.
//   A broker that refuses MQTT 5 (the embedded aedes) gets MQTT 3.1.1 and a plain subscription:
//   then only one bridge may run.
// - Persistent session (clean start off, a session expiry that outlasts a restart, a stable
//   client ID): messages queue at the broker while the bridge restarts, and unacknowledged ones
//   are sent again. (The broker's queue per client is bounded: Mosquitto's max_queued_messages.)
// - Backpressure: mqtt.js hands packets over one at a time through `handleMessage(packet, cb)`
//   and reads the next only after `cb`; holding `cb` stops the socket, and TCP pushes back to
//   the broker.
// - Durable acks: mqtt.js sends a PUBACK right after `handleMessage`'s callback. The PUBACKs it
//   would send are swallowed (their callback runs at once so reading goes on) and the bridge
//   writes its own, for committed messages only, straight to the socket: a PUBACK is 4 bytes
//   (0x40, 2, packet ID), the same in MQTT 3.1.1 and in MQTT 5 with reason code 0 and no
//   properties, so a committed batch's acks go out as one write. Acks of messages received on an
//   earlier connection are dropped: the broker sends those messages again on the new one.
//   The broker must let enough messages be unacknowledged: MQTT 5's receive maximum (65535).
//   MQTT 3.1.1 has no receive maximum: aedes does not limit unacknowledged messages, but a
//   Mosquitto spoken to in 3.1.1 allows 20 (max_inflight_messages), which would make durable acks
//   crawl; there, use ackMode 'on-receive' (PUBACK at once; the bridge flushes on shutdown).
import { hostname } from 'node:os';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { connectMqtt } from '../runtime/mqtt-client';
import type { Logger } from '../runtime/logger';
import { ALL_DEVICES_FILTER, sharedFilter } from '../domain/topics';

export type AckMode = 'durable' | 'on-receive';

export interface IntakeOptions {
  url: string;
  clientId: string;
  /** Shared-subscription group (MQTT 5). */
  group: string;
  /** 'auto': MQTT 5, or 3.1.1 when the broker refuses it. */
  protocol?: 'auto' | 5 | 4;
  sessionExpirySeconds: number;
  ackMode: AckMode;
  username?: string;
  password?: string;
  log: Logger;
  /** A message arrived (`conn` identifies the connection, for its ack). */
  onMessage(packet: IPublishPacket, conn: number): void;
  /** True while the bridge holds as many messages as it may: reading stops until `resume()`. */
  isFull(): boolean;
  onConnectionChange?(connected: boolean): void;
}

/** The client ID of this bridge instance: stable across restarts, distinct per instance. */
export function defaultBridgeClientId(bridgeId?: string): string {
  const id = (bridgeId ?? hostname()).replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `rdm-bridge-${id}`;
}

const PROTOCOL_REFUSED = new Set([1, 132]); // 3.1.1 "unacceptable protocol version", MQTT 5 "unsupported protocol version"

export class Intake {
  client: MqttClient | null = null;
  protocol: 5 | 4 | null = null;
  /** Increases with every (re)connection. */
  conn = 0;
  acksSent = 0;
  acksDropped = 0;
  private waiting: (() => void)[] = [];
  private stopped = false;
  private subscribed = false;

  constructor(private readonly o: IntakeOptions) {}

  get connected(): boolean {
    return !!this.client?.connected;
  }
  get paused(): boolean {
    return this.waiting.length > 0;
  }

  /** Connects and subscribes; resolves once the subscription is granted. */
  async start(): Promise<void> {
    const wanted = this.o.protocol ?? 'auto';
    if (wanted === 4) return this.connect(4);
    try {
      await this.connect(5);
    } catch (err) {
      if (wanted === 5 || !(err instanceof ProtocolRefused)) throw err;
      this.o.log.warn(
        { url: this.o.url },
        'the MQTT broker refuses MQTT 5: falling back to MQTT 3.1.1 with a plain subscription; run only ONE bridge against this broker (no shared subscriptions)',
      );
      await this.connect(4);
    }
  }

  private connect(version: 5 | 4): Promise<void> {
    const o = this.o;
    const filter = version === 5 ? sharedFilter(o.group, ALL_DEVICES_FILTER) : ALL_DEVICES_FILTER;
    const opts: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: version,
      clean: false,
      resubscribe: false, // subscribed below, on every connection
      reconnectPeriod: 1_000,
      keepalive: 30,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(version === 5 ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds, receiveMaximum: 65_535 } } : {}),
    };
    const client = connectMqtt(o.url, 'bridge', opts);
    this.client = client;
    this.protocol = version;

    client.handleMessage = (packet, cb) => {
      if (this.stopped) {
        // Stopping: the message is not taken (nor acknowledged: the broker sends it again to the
        // next session). With durable acks, reading on is harmless and lets the socket drain, so
        // the DISCONNECT handshake can finish; acking on receive, reading must stop here.
        if (o.ackMode === 'durable') cb();
        return;
      }
      o.onMessage(packet as IPublishPacket, this.conn);
      if (o.isFull()) this.waiting.push(cb as () => void);
      else cb();
    };
    if (o.ackMode === 'durable') {
      const c = client as unknown as { _sendPacket: (packet: { cmd: string }, cb?: (err?: Error) => void, ...rest: unknown[]) => void };
      const send = c._sendPacket.bind(client);
      c._sendPacket = (packet, cb, ...rest) => {
        if (packet.cmd === 'puback') {
          cb?.(); // the bridge acknowledges after the commit (ack())
          return;
        }
        send(packet, cb, ...rest);
      };
    }

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      client.on('connect', (connack) => {
        this.conn++;
        (client.stream as Socket).setNoDelay?.(true);
        o.onConnectionChange?.(true);
        o.log.info({ protocol: version, sessionPresent: connack.sessionPresent, clientId: o.clientId }, 'connected to the MQTT broker');
        // MQTT 3.1.1 with a session: the broker kept the subscription (subscribing again would
        // replay every retained message). MQTT 5 shared subscriptions replay nothing.
        if (version === 4 && connack.sessionPresent && this.subscribed) return;
        client.subscribe(filter, { qos: 1 }, (err, granted) => {
          const g = granted?.[0];
          if (err || !g || g.qos > 2) {
            const e = err ?? new Error(`the broker refused the subscription to ${filter} (code ${g?.qos})`);
            o.log.error({ err: e.message, filter }, 'subscription refused');
            settle(e);
            return;
          }
          this.subscribed = true;
          o.log.info({ filter }, 'subscribed');
          settle();
        });
      });
      client.on('error', (err: Error & { code?: number }) => {
        if (typeof err.code === 'number' && PROTOCOL_REFUSED.has(err.code) && version === 5 && !this.subscribed) {
          client.end(true);
          settle(new ProtocolRefused(err.message));
          return;
        }
        o.log.warn({ err: err.message, code: err.code }, 'MQTT error');
      });
      client.on('close', () => o.onConnectionChange?.(false));
      client.on('disconnect', (packet) => {
        // 142: another client took this session (a second bridge with the same client ID).
        o.log.warn({ reasonCode: packet.reasonCode }, packet.reasonCode === 142 ? 'another bridge took over this client ID: give each bridge its own BRIDGE_ID' : 'the broker disconnected the bridge');
      });
    });
  }

  /** Reading may go on (the bridge drained below its bound). */
  resume(): void {
    if (this.waiting.length === 0 || this.stopped) return;
    const w = this.waiting;
    this.waiting = [];
    for (const cb of w) cb();
  }

  /**
   * Sends the PUBACKs of committed messages [from, to) of a batch, in one socket write. Acks for
   * another connection than the current one are dropped (the broker resends those messages).
   */
  ack(ids: readonly number[], conns: readonly number[], from = 0, to = ids.length): void {
    if (this.o.ackMode !== 'durable') return;
    const client = this.client;
    const live = !!client?.connected && !!client.stream && !(client.stream as Socket).destroyed;
    let count = 0;
    for (let i = from; i < to; i++) if (ids[i]! > 0) count++;
    if (count === 0) return;
    if (!live) {
      this.acksDropped += count;
      return;
    }
    const buf = Buffer.allocUnsafe(count * 4);
    let off = 0;
    for (let i = from; i < to; i++) {
      const id = ids[i]!;
      if (id === 0) continue;
      if (conns[i] !== this.conn) {
        this.acksDropped++;
        continue;
      }
      buf[off] = 0x40;
      buf[off + 1] = 2;
      buf[off + 2] = id >> 8;
      buf[off + 3] = id & 0xff;
      off += 4;
    }
    if (off === 0) return;
    client!.stream.write(off === buf.length ? buf : buf.subarray(0, off));
    this.acksSent += off / 4;
  }

  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve())));
  }

  /** Stops reading at once; what was not handed over stays unacknowledged at the broker. */
  stopReading(): void {
    this.stopped = true;
    const w = this.waiting;
    this.waiting = [];
    // Held callbacks: with durable acks, release them (their messages are taken; the rest is read
    // and left unacknowledged); acking on receive, they must stay held.
    if (this.o.ackMode === 'durable') for (const cb of w) cb();
  }

  /**
   * Graceful: a DISCONNECT (the session stays for the next start), then the socket closes; if the
   * close does not come (a paused socket with unread data never sees the broker's end) it is
   * dropped after `graceMs`. Abrupt: drop the socket at once.
   */
  async end(graceful: boolean, graceMs = 2_000): Promise<void> {
    this.stopReading();
    const client = this.client;
    if (!client) return;
    if (!graceful) {
      await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.o.log.debug('the MQTT connection did not close after DISCONNECT; dropping it');
        (client.stream as Socket | undefined)?.destroy();
        resolve();
      }, graceMs);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

class ProtocolRefused extends Error {}
