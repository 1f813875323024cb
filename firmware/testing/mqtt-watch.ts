// Test support: a plain MQTT client that watches one device's tree the way a controller would,
// and helpers to wait for what the firmware should have published.
import type { MqttClient } from 'mqtt';
import { connectMqtt } from '../../runtime/mqtt-client';
import { topics } from '../../domain/topics';

export interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

export class TreeWatcher {
  /** Last payload per topic (empty payloads delete, as retained messages do). */
  readonly tree = new Map<string, string>();
  readonly history: Seen[] = [];
  private waiters = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString('utf8');
      if (text === '') this.tree.delete(topic);
      else this.tree.set(topic, text);
      this.history.push({ topic, payload: text, retain: packet.retain });
      for (const w of [...this.waiters]) w();
    });
  }

  static async open(url: string, filter: string | string[]): Promise<TreeWatcher> {
    const client = connectMqtt(url, 'test-watch', { reconnectPeriod: 200 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const w = new TreeWatcher(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return w;
  }

  get(topic: string): string | undefined {
    return this.tree.get(topic);
  }

  /** Resolves when `check` holds (checked now and after each message), rejects after timeoutMs. */
  until<T>(check: () => T | undefined | null | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const v = check();
        if (v !== undefined && v !== null && v !== false) {
          this.waiters.delete(attempt);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(attempt);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(attempt);
      attempt();
    });
  }

  /** Waits until `topic` holds `payload`. */
  value(topic: string, payload: string, timeoutMs = 5_000): Promise<true> {
    return this.until(() => this.tree.get(topic) === payload, timeoutMs, `${topic} = ${payload} (now ${this.tree.get(topic)})`);
  }

  /** The $state payloads seen, in order. */
  states(deviceId: string): string[] {
    const t = topics.state(deviceId);
    return this.history.filter((h) => h.topic === t).map((h) => h.payload);
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** Deletes every retained message under a device (what the test created), so runs leave no trace. */
export async function clearRetained(url: string, deviceIds: string[]): Promise<void> {
  if (deviceIds.length === 0) return;
  const client = connectMqtt(url, 'test-clear', { reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const retained = new Set<string>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) retained.add(topic);
  });
  await client.subscribeAsync(deviceIds.map((id) => topics.deviceAll(id)), { qos: 1 });
  await new Promise((r) => setTimeout(r, 200)); // retained messages arrive right after SUBACK
  await Promise.all([...retained].map((t) => client.publishAsync(t, '', { qos: 1, retain: true })));
  await client.endAsync();
}

export async function plainClient(url: string): Promise<MqttClient> {
  const client = connectMqtt(url, 'test', { reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
