// Request/response with a device over MQTT, for the calls that answer only once the device has
// (a set confirmed by its echo, a diagnostic command's result). Runs in the API process: the
// confirmation is a single MQTT message that one API request waits for, so it needs no workflow
// and must not pay Temporal's latency (target: p50 ≤ 3 ms for a whole set round trip).
//
// Each waiting request subscribes to the exact reply topic before it publishes, so the answer
// cannot slip past. Subscriptions are reference-counted and linger a little, so repeated calls
// to the same device skip the SUBSCRIBE round trip. Retained messages (the broker replaying the
// last value to a new subscription) are never taken for an answer.
import type { IPublishPacket, MqttClient } from 'mqtt';
import { DeviceTimeoutError, UnavailableError } from '../domain/errors';

/** How long an idle reply subscription is kept. */
const LINGER_MS = 30_000;

interface Subscription {
  refs: number;
  ready: Promise<void>;
  linger: NodeJS.Timeout | null;
}

type Waiter = (payload: Buffer) => boolean;

export interface DeviceRequest<T> {
  /** Where the answer arrives (an exact topic: no wildcards). */
  replyTopic: string;
  /** What to subscribe to for it: replyTopic itself, or a per-device filter that covers it
   * (unique reply topics, e.g. one per command, would otherwise each cost a subscription). */
  replyFilter?: string;
  publishTopic: string;
  payload: string | Buffer;
  /** The answer when this payload is one, else undefined (e.g. a periodic value, not the echo). */
  accept: (payload: Buffer) => T | undefined;
  timeoutMs: number;
  /** Says what timed out, for the 504. */
  what: string;
}

export class DeviceRequests {
  private readonly subs = new Map<string, Subscription>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(private readonly client: MqttClient) {
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      if (packet.retain) return; // a stored value replayed on subscribe, not something the device just said
      const waiting = this.waiters.get(topic);
      if (!waiting) return;
      for (const w of waiting) if (w(payload)) this.unwait(topic, w);
    });
  }

  async request<T>(r: DeviceRequest<T>): Promise<T> {
    if (!this.client.connected) throw new UnavailableError('the platform is not connected to the MQTT broker');
    const filter = r.replyFilter ?? r.replyTopic;
    const sub = this.acquire(filter);
    try {
      await sub.ready;
      return await new Promise<T>((resolve, reject) => {
        const waiter = (payload: Buffer) => {
          const answer = r.accept(payload);
          if (answer === undefined) return false;
          clearTimeout(timer);
          resolve(answer);
          return true;
        };
        const timer = setTimeout(() => {
          this.unwait(r.replyTopic, waiter);
          reject(new DeviceTimeoutError(`${r.what}: the device did not answer within ${r.timeoutMs} ms`));
        }, r.timeoutMs);
        let set = this.waiters.get(r.replyTopic);
        if (!set) this.waiters.set(r.replyTopic, (set = new Set()));
        set.add(waiter);
        this.client.publish(r.publishTopic, r.payload, { qos: 1 }, (err) => {
          if (!err) return;
          clearTimeout(timer);
          this.unwait(r.replyTopic, waiter);
          reject(new UnavailableError(`cannot reach the MQTT broker: ${err.message}`));
        });
      });
    } finally {
      this.release(filter, sub);
    }
  }

  /** Fire-and-forget to a device (QoS 1): resolves once the broker has the message. */
  publish(topic: string, payload: string | Buffer, opts: { retain?: boolean } = {}): Promise<void> {
    if (!this.client.connected) return Promise.reject(new UnavailableError('the platform is not connected to the MQTT broker'));
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: 1, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  private unwait(topic: string, w: Waiter): void {
    const set = this.waiters.get(topic);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.waiters.delete(topic);
  }

  private acquire(topic: string): Subscription {
    let sub = this.subs.get(topic);
    if (!sub) {
      const s: Subscription = { refs: 0, linger: null, ready: Promise.resolve() };
      s.ready = this.client.subscribeAsync(topic, { qos: 1 }).then(
        () => undefined,
        (err: Error) => {
          this.subs.delete(topic);
          throw new UnavailableError(`cannot subscribe to the device's answers: ${err.message}`);
        },
      );
      this.subs.set(topic, s);
      sub = s;
    }
    sub.refs++;
    if (sub.linger) {
      clearTimeout(sub.linger);
      sub.linger = null;
    }
    return sub;
  }

  private release(topic: string, sub: Subscription): void {
    if (--sub.refs > 0 || this.subs.get(topic) !== sub) return;
    sub.linger = setTimeout(() => {
      if (sub.refs > 0) return;
      this.subs.delete(topic);
      this.client.unsubscribe(topic);
    }, LINGER_MS);
    sub.linger.unref();
  }

  /** Subscriptions held right now (for tests and metrics). */
  get subscriptionCount(): number {
    return this.subs.size;
  }

  close(): void {
    for (const sub of this.subs.values()) if (sub.linger) clearTimeout(sub.linger);
    this.subs.clear();
    this.waiters.clear();
  }
}
