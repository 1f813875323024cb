// What the worker's activities need of MQTT: publish one message to a device and know the broker
// has it (QoS 1 acknowledged). A small interface, so activities take it as a dependency.
import type { MqttClient } from 'mqtt';

export interface DevicePublisher {
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
}

/** On a connected mqtt.js client (made by connectMqtt, which sets TCP_NODELAY). */
export function mqttPublisher(client: MqttClient, timeoutMs = 10_000): DevicePublisher {
  return {
    async publish(topic, payload, opts) {
      // mqtt.js queues while disconnected; the activity's own timeout would otherwise be the only bound.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`MQTT publish to ${topic} not acknowledged within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([client.publishAsync(topic, payload, opts), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
