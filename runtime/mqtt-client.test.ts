// TCP_NODELAY on every connection the platform makes: mqtt.js never sets it, and Nagle's algorithm
// with delayed ACKs adds ~40 ms or more to each QoS 1 round trip. Asserted on the socket rather than
// timed, so that a busy machine cannot fail it (round trips are measured by scripts/bench/control.ts).
import { Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { testEnv } from '../test/support/env';
import { connectMqtt } from './mqtt-client';

const connected = (client: MqttClient) => new Promise<void>((resolve) => client.once('connect', () => resolve()));

it('sets TCP_NODELAY on its socket, and again on the new socket of a reconnection', async () => {
  const noDelay = jest.spyOn(Socket.prototype, 'setNoDelay');
  const hasNoDelay = (socket: unknown) => noDelay.mock.contexts.some((s, i) => s === socket && noDelay.mock.calls[i]![0] !== false);
  const client = connectMqtt(testEnv().mqttUrl, 'nodelay-test', { reconnectPeriod: 50 });
  try {
    await connected(client);
    const first = client.stream;
    expect(hasNoDelay(first)).toBe(true);

    const again = connected(client);
    first.destroy(); // the connection drops: mqtt.js reconnects on a new socket
    await again;
    expect(client.stream).not.toBe(first);
    expect(hasNoDelay(client.stream)).toBe(true);
  } finally {
    client.end(true);
    noDelay.mockRestore();
  }
});
