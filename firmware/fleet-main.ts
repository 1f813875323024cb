// Many simulated devices in one process (load tests, end-to-end checks):
//
//   npx tsx firmware/fleet-main.ts (--file devices.csv | --count 1000)
//     [--mix '{"ev-charger":0.5,"thermostat":0.3,"lock":0.2}']
//     [--rate <fleet msg/s> | --device-rate <msg/s per device> | --interval <ms>]
//     [--connect-rate 200] [--qos 0|1] [--homie 4.0|3.0] [--bench] [--duration <s>]
//     [--report-every 5] [--broker mqtt://host:1884]
//     [--ota instant|full] [--ota-public-key platform-key.pem] [--reboot-delay <ms>]
//
// Generated devices (--count) only work with a broker that lets anyone in. Each device is one TCP
// connection: `ulimit -n` (20000 on the project's machine) bounds how many one process can run.
import { parseArgs } from 'node:util';
import { createLogger } from '../runtime/logger';
import { homieArg, intArg, numberArg, otaModeArg, otaPublicKeyArg, qosArg } from './cli-args';
import { Fleet, generateCredentials, type FleetCredential } from './fleet';
import { fallbackBrokerUrl, loadProvisioningList } from './provisioning';

const USAGE = `usage: npx tsx firmware/fleet-main.ts (--file <devices.csv> | --count <n>) [--mix <json>]
  [--rate <msg/s> | --device-rate <msg/s> | --interval <ms>] [--connect-rate <per s>] [--qos 0|1]
  [--homie 4.0|3.0] [--bench] [--duration <s>] [--report-every <s>] [--broker <mqtt url>]
  [--ota instant|full] [--ota-public-key <pem file>] [--reboot-delay <ms>]`;

function parseMix(text: string | undefined): Record<string, number> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('--mix must be a JSON object of model weights');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((w) => typeof w === 'number')) {
    throw new Error('--mix must be a JSON object of model weights, e.g. {"ev-charger":0.5,"lock":0.5}');
  }
  return v as Record<string, number>;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      file: { type: 'string' },
      count: { type: 'string' },
      mix: { type: 'string' },
      rate: { type: 'string' },
      'device-rate': { type: 'string' },
      interval: { type: 'string' },
      'connect-rate': { type: 'string' },
      qos: { type: 'string' },
      homie: { type: 'string' },
      bench: { type: 'boolean' },
      duration: { type: 'string' },
      'report-every': { type: 'string' },
      broker: { type: 'string' },
      ota: { type: 'string' },
      'ota-public-key': { type: 'string' },
      'reboot-delay': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help || (!a.file && !a.count)) {
    console.log(USAGE);
    process.exitCode = a.help ? 0 : 2;
    return;
  }
  const log = createLogger(a['log-level'] ?? process.env.LOG_LEVEL ?? 'info', 'fleet');
  const broker = fallbackBrokerUrl({ broker: a.broker });
  const devices: FleetCredential[] = a.file ? loadProvisioningList(a.file, { broker: a.broker }) : generateCredentials(intArg('count', a.count, { min: 1 })!);
  const fleet = new Fleet({
    devices,
    mqttUrl: broker,
    mix: parseMix(a.mix),
    targetRate: numberArg('rate', a.rate),
    perDeviceRate: numberArg('device-rate', a['device-rate']),
    publishIntervalMs: numberArg('interval', a.interval),
    connectRate: numberArg('connect-rate', a['connect-rate']),
    qos: qosArg(a.qos),
    homie: homieArg(a.homie),
    bench: a.bench ?? false,
    ota: otaModeArg(a.ota),
    otaPublicKey: otaPublicKeyArg(a['ota-public-key']) ?? null,
    rebootDelayMs: intArg('reboot-delay', a['reboot-delay'], { min: 0 }),
  });
  const first = fleet.stats();
  log.info({ devices: first.devices, models: first.models, targetRate: first.targetRate, broker }, 'fleet starting');
  fleet.start();

  let last = fleet.stats();
  const every = (numberArg('report-every', a['report-every']) ?? 5) * 1000;
  const report = setInterval(() => {
    const s = fleet.stats();
    const rate = Math.round(((s.valuesSent - last.valuesSent) * 1000) / (s.atMs - last.atMs));
    log.info({ connected: s.connected, reconnects: s.reconnects, rate, target: s.targetRate, sent: s.valuesSent, published: s.valuesPublished, failed: s.valuesFailed, maxLagMs: s.maxLagMs }, 'fleet');
    last = s;
  }, every);

  let stopping = false;
  const shutdown = (why: string) => {
    if (stopping) return;
    stopping = true;
    clearInterval(report);
    log.info({ why }, 'stopping');
    void (async () => {
      await fleet.stop();
      const s = fleet.stats();
      const seconds = s.startedAtMs === null ? 0 : (s.atMs - s.startedAtMs) / 1000;
      log.info({ ...s, averageRate: seconds ? Math.round(s.valuesSent / seconds) : 0, firmwareVersions: fleet.firmwareVersions(), ota: fleet.otaStats() }, 'fleet stopped');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  const duration = numberArg('duration', a.duration);
  if (duration !== undefined) setTimeout(() => shutdown('duration'), duration * 1000).unref();
}

main().catch((err: unknown) => {
  console.error(`fleet: ${(err as Error).message}`);
  console.error(USAGE);
  process.exit(2);
});
