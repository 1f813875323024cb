// One simulated device from its provisioning data, until SIGINT/SIGTERM:
//
//   npx tsx firmware/main.ts --file devices.csv --device <ID> [--row <n>] [--model ev-charger]
//     [--homie 3.0] [--admin-port 8080] [--admin-host 127.0.0.1] [--admin-auth]
//     [--state-dir DIR] [--interval 5000] [--qos 0|1] [--broker mqtt://host:1884] [--log-level info]
//     [--pairing button|accept|refuse] [--ota-public-key platform-key.pem]
//
// Standard input takes commands, one per line: `press` (the pairing button: accept the pending
// request), `refuse` (refuse it), `owner` (print the owner).
//
// The broker is the file's `mqtt_url` when it has one, else --broker, else MQTT_URL, else
// mqtt://127.0.0.1:1884 (the platform's embedded broker).
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { createLogger } from '../runtime/logger';
import { homieArg, intArg, otaPublicKeyArg, qosArg } from './cli-args';
import { Device } from './device';
import { startLocalAdmin, type LocalAdmin } from './local-admin';
import { findModel, MODEL_NAMES } from './models';
import { PAIRING_MODES, type PairingMode } from './pairing';
import { loadProvisioning } from './provisioning';

function pairingArg(v: string | undefined): PairingMode | undefined {
  if (v === undefined) return undefined;
  if (!(PAIRING_MODES as readonly string[]).includes(v)) throw new Error(`--pairing must be one of ${PAIRING_MODES.join(', ')}`);
  return v as PairingMode;
}

const USAGE = `usage: npx tsx firmware/main.ts --file <devices.csv|provisioning.json> (--device <ID> | --row <n>)
  [--model ${MODEL_NAMES.join('|')}] [--homie 4.0|3.0] [--interval <ms>] [--qos 0|1]
  [--state-dir <dir>] [--admin-port <port>] [--admin-host <host>] [--admin-auth]
  [--broker <mqtt url>] [--log-level debug|info|warn|error] [--pairing button|accept|refuse]
  [--ota-public-key <pem file>]
stdin commands: press | refuse | owner`;

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      file: { type: 'string' },
      device: { type: 'string' },
      row: { type: 'string' },
      model: { type: 'string' },
      homie: { type: 'string' },
      interval: { type: 'string' },
      qos: { type: 'string' },
      'state-dir': { type: 'string' },
      'admin-port': { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-auth': { type: 'boolean' },
      broker: { type: 'string' },
      'log-level': { type: 'string' },
      pairing: { type: 'string' },
      'ota-public-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help || !a.file) {
    console.log(USAGE);
    process.exitCode = a.help ? 0 : 2;
    return;
  }
  const log = createLogger(a['log-level'] ?? process.env.LOG_LEVEL ?? 'info', 'firmware');
  const p = loadProvisioning(a.file, { device: a.device, row: intArg('row', a.row, { min: 1 }) }, { broker: a.broker });
  // --model wins; else the batch's model when it names a firmware model; else the charger.
  const modelName = a.model ?? (findModel(p.model) ? p.model! : 'ev-charger');
  if (!a.model && p.model && !findModel(p.model)) log.warn({ model: p.model, using: modelName }, 'the batch model is not a firmware model');

  // The command line's key wins over the provisioning file's.
  const otaPublicKey = otaPublicKeyArg(a['ota-public-key']) ?? p.otaPublicKey ?? null;
  if (!otaPublicKey) log.warn('no OTA public key (--ota-public-key or the provisioning file\'s otaPublicKey): every update will be refused');
  const device = new Device({
    deviceId: p.deviceId,
    mqttUsername: p.mqttUsername,
    secret: p.secret,
    mqttUrl: p.mqttUrl,
    model: modelName,
    homie: homieArg(a.homie),
    publishIntervalMs: intArg('interval', a.interval, { min: 10 }),
    qos: qosArg(a.qos),
    stateDir: a['state-dir'] ?? null,
    logger: log,
    pairing: pairingArg(a.pairing),
    otaPublicKey,
  });
  device.on('connect-error', ({ error }) => log.debug({ err: error.message }, 'mqtt connection failed'));
  device.on('reconnect-scheduled', ({ attempt, delayMs }) => log.info({ attempt, delayMs }, 'reconnecting'));

  let admin: LocalAdmin | null = null;
  const adminPort = intArg('admin-port', a['admin-port'], { min: 0, max: 65_535 });
  if (adminPort !== undefined) {
    admin = await startLocalAdmin({
      device,
      port: adminPort,
      host: a['admin-host'],
      auth: a['admin-auth'] ? { username: p.deviceId, password: p.secret } : null,
    });
    log.info({ url: admin.url }, 'local admin page');
  }
  device.on('pairing-request', (r) => log.info({ pairingId: r.pairingId, expiresAt: r.expiresAt }, 'pairing request: type "press" to accept, "refuse" to refuse'));
  device.on('owner', ({ ownerId }) => log.info({ ownerId }, 'owner'));
  const commands = readline.createInterface({ input: process.stdin, terminal: false });
  commands.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'press' || cmd === 'refuse') {
      const done = cmd === 'press' ? device.pressButton() : device.refusePairing();
      if (!done) log.warn('no pairing request is waiting');
    } else if (cmd === 'owner') {
      log.info({ ownerId: device.owner }, 'owner');
    } else if (cmd) {
      log.warn({ command: cmd.slice(0, 40) }, 'unknown command (press | refuse | owner)');
    }
  });
  device.start();
  log.info({ deviceId: p.deviceId, model: modelName, broker: p.mqttUrl, homie: device.homie, firmwareVersion: device.firmwareVersion }, 'device started');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void (async () => {
      await device.stop();
      await admin?.close();
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  // `npx tsx firmware/main.ts` runs this file in a child of the tsx process, and a SIGKILL of tsx
  // cannot be passed on: the device would live on as an orphan. When the launcher is gone, the
  // device loses power instead (no DISCONNECT, so the broker publishes the last will `lost`).
  const launcher = process.ppid;
  setInterval(() => {
    if (process.ppid === launcher || stopping) return;
    stopping = true;
    log.warn({ launcher }, 'launcher gone: powering off');
    device.kill();
    void admin?.close();
    setTimeout(() => process.exit(137), 100);
  }, 200).unref();
}

main().catch((err: unknown) => {
  console.error(`firmware: ${(err as Error).message}`);
  console.error(USAGE);
  process.exit(2);
});
