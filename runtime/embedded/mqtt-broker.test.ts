import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import net from 'node:net';
import { captureLog } from './__fixtures__/capture-log';
import { portIsFree } from './free-port';
import { startEmbeddedBroker, type EmbeddedBroker } from './mqtt-broker';

const clients: MqttClient[] = [];

/** aedes 1.x speaks MQTT 3.1.1 only: protocolVersion 4. */
function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3_000, ...opts });
  clients.push(c);
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

function nextMessage(c: MqttClient): Promise<{ topic: string; payload: string; retain: boolean; qos: number }> {
  return new Promise((resolve) =>
    c.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos })),
  );
}

afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});

describe('embedded MQTT broker', () => {
  let broker: EmbeddedBroker;
  let startMs: number;
  beforeAll(async () => {
    const t = Date.now();
    broker = await startEmbeddedBroker({ port: 0, log: captureLog() });
    startMs = Date.now() - t;
  });
  afterAll(() => broker.stop());

  test('delivers QoS 1 publishes between clients, without Nagle delays (TCP_NODELAY on the broker side)', async () => {
    expect(broker.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const noDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    const sub = await connect(broker.url);
    const pub = await connect(broker.url);
    // The broker's end of each connection (local port: the broker's; remote: the client's) has it.
    const brokerPort = Number(new URL(broker.url).port);
    const brokerSideNoDelay = (c: MqttClient) =>
      noDelay.mock.contexts.some((s, i) => {
        const socket = s as net.Socket;
        return socket.localPort === brokerPort && socket.remotePort === (c.stream as net.Socket).localPort && noDelay.mock.calls[i]![0] !== false;
      });
    expect([brokerSideNoDelay(sub), brokerSideNoDelay(pub)]).toEqual([true, true]);
    noDelay.mockRestore();
    // Round trips from the client side need no-delay too (mqtt.js never sets it).
    for (const c of [sub, pub]) (c.stream as net.Socket).setNoDelay(true);
    await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });

    const got = nextMessage(sub);
    await pub.publishAsync('devices/d1/telemetry', '{"t":21.5}', { qos: 1 });
    expect(await got).toEqual({ topic: 'devices/d1/telemetry', payload: '{"t":21.5}', retain: false, qos: 1 });

    // A device echo (command → device → reply, QoS 1 both ways), the pattern where Nagle + delayed
    // ACK bite: measured here ~44 ms per round trip without no-delay on the broker's sockets, ~0.6 with.
    // Printed, not asserted: a busy machine slows round trips too (the socket option is asserted above).
    await sub.subscribeAsync('devices/d1/commands', { qos: 1 });
    sub.on('message', (topic, payload) => {
      if (topic === 'devices/d1/commands') sub.publish('devices/d1/replies', payload, { qos: 1 });
    });
    await pub.subscribeAsync('devices/d1/replies', { qos: 1 });
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = process.hrtime.bigint();
      const reply = nextMessage(pub);
      pub.publish('devices/d1/commands', String(i), { qos: 1 });
      expect((await reply).payload).toBe(String(i));
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(times.length / 2)]!;
    process.stdout.write(`embedded broker: start ${startMs} ms, QoS 1 echo round trip p50 ${p50.toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms\n`);
  });

  test('delivers a retained message to a later subscriber', async () => {
    const pub = await connect(broker.url);
    await pub.publishAsync('devices/d2/config', '{"interval":5}', { qos: 1, retain: true });
    const late = await connect(broker.url);
    const got = nextMessage(late);
    await late.subscribeAsync('devices/d2/config', { qos: 1 });
    expect(await got).toMatchObject({ topic: 'devices/d2/config', payload: '{"interval":5}', retain: true });
  });

  test('MQTT 5 clients are refused (aedes 1.x is MQTT 3.1.1 only)', async () => {
    await expect(connect(broker.url, { protocolVersion: 5 })).rejects.toThrow(/protocol version/i);
  });
});

test('stop disconnects the clients, frees the port, and is idempotent', async () => {
  const broker = await startEmbeddedBroker({ port: 0, log: captureLog() });
  const port = Number(new URL(broker.url).port);
  const c = await connect(broker.url);
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  await broker.stop();
  await closed;
  await broker.stop();
  expect(await portIsFree(port)).toBe(true);
});

test('authentication and authorization hooks are passed through to aedes', async () => {
  const broker = await startEmbeddedBroker({
    port: 0,
    log: captureLog(),
    auth: {
      authenticate: (_client, username, password, done) => done(null, username === 'device-1' && password?.toString() === 'secret'),
      authorizePublish: (client, packet, done) => done(packet.topic.startsWith(`devices/${client?.id}/`) ? null : new Error('not your topic')),
      authorizeSubscribe: (client, sub, done) => done(null, sub.topic.startsWith(`devices/${client.id}/`) ? sub : null),
    },
  });
  try {
    await expect(connect(broker.url, { clientId: 'device-1', username: 'device-1', password: 'wrong' })).rejects.toThrow(/Not authorized|Bad username/i);
    const ok = await connect(broker.url, { clientId: 'device-1', username: 'device-1', password: 'secret' });
    expect((await ok.subscribeAsync('devices/device-1/commands', { qos: 1 }))[0]?.qos).toBe(1);
    await expect(ok.subscribeAsync('devices/device-2/commands', { qos: 1 })).rejects.toThrow(/Subscribe error/); // SUBACK 128
    const got = nextMessage(ok);
    await ok.publishAsync('devices/device-1/commands', 'to myself', { qos: 1 });
    expect((await got).payload).toBe('to myself');
    // A publish outside its own topics makes aedes drop the connection (MQTT 3.1.1 has no refusal code).
    const dropped = new Promise<void>((r) => ok.once('close', () => r()));
    ok.publish('devices/device-2/commands', 'not mine', { qos: 1 });
    await dropped;
  } finally {
    await broker.stop();
  }
});

test('a taken port is a clear error', async () => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const { port } = blocker.address() as net.AddressInfo;
  try {
    await expect(startEmbeddedBroker({ port, log: captureLog() })).rejects.toThrow(/127\.0\.0\.1:\d+ is already in use/);
  } finally {
    blocker.close();
  }
});
