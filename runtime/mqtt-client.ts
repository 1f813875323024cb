// Every MQTT client the platform makes. TCP_NODELAY on each connection: mqtt.js never sets it,
// and Nagle's algorithm with delayed ACKs turns a 0.2 ms QoS 1 round trip into ~88 ms.
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';

export function connectMqtt(url: string, role: string, opts: IClientOptions = {}): MqttClient {
  const client = mqtt.connect(url, {
    clientId: `rdm-${role}-${randomBytes(4).toString('hex')}`,
    protocolVersion: 4, // MQTT 3.1.1: the embedded broker (aedes) speaks no MQTT 5
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
    // A login given here wins over one in the URL (mqtt.js would let the URL's override it).
    ...(opts.username !== undefined ? { auth: undefined } : {}),
    ...opts,
  });
  client.on('connect', () => (client.stream as Socket).setNoDelay?.(true));
  client.on('error', () => undefined); // surfaced through readiness; mqtt.js reconnects by itself
  return client;
}
