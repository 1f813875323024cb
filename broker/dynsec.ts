// Device logins in an external Mosquitto through its dynamic-security plugin (MQTT_AUTH=dynsec):
// the platform sends the plugin's JSON commands on `$CONTROL/dynamic-security/v1` with its own
// admin login, and a change counts as done when the plugin has answered it.
//
// Each login gets a role of its own carrying its ACL (domain/broker-identity.ts `dynsecAcls`):
// Mosquitto 2.0's plugin substitutes no `%u`. The plugin also rewrites its whole JSON file after
// every command, so this mechanism suits fleets of thousands, not of 100,000 (measured in
// docs/broker.md); the embedded broker uses the password file for that reason.
//
// Every operation is idempotent, as the CredentialStore contract asks: an existing role or client
// is modified instead of created, a missing one is already removed. Several workers may hold a
// store at once: replies are matched by correlation data, so each ignores the others' answers.
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { dynsecAcls, isPlatformClient } from '../domain/broker-identity';
import { connectMqtt } from '../runtime/mqtt-client';
import type { CredentialStore, MqttLogin } from './credential-store';

export const DYNSEC_CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${DYNSEC_CONTROL_TOPIC}/response`;

/** The role that carries one login's rights. */
export const dynsecRoleOf = (username: string): string => (isPlatformClient(username) ? `rdm-platform-${username}` : `rdm-device-${username}`);

export interface DynsecCommand {
  command: string;
  [field: string]: unknown;
}
interface Reply {
  command: string;
  error?: string;
  correlationData?: string;
}

/** The plugin's answers that mean "already as asked": these keep every operation idempotent. */
const ALREADY: Record<string, string> = {
  createRole: 'Role already exists',
  createClient: 'Client already exists',
  deleteClient: 'Client not found',
  deleteRole: 'Role not found',
};

export class DynsecError extends Error {
  constructor(readonly command: string, readonly reason: string) {
    super(`dynamic-security ${command}: ${reason}`);
  }
}

export interface DynsecOptions {
  url: string;
  /** The plugin's admin login (MQTT_DYNSEC_USERNAME / MQTT_DYNSEC_PASSWORD). */
  admin: MqttLogin;
  /** How long one message of commands may wait for its answers. Default 30 s. */
  timeoutMs?: number;
  /** Commands per control message: fewer round trips, bounded message size. Default 200. */
  commandsPerMessage?: number;
}

/** A connection to the plugin that sends commands and waits for their answers. */
export class DynsecControl {
  private readonly client: MqttClient;
  private readonly waiting = new Map<string, { resolve: (r: Reply) => void }>();
  private readonly prefix = randomBytes(6).toString('hex');
  private seq = 0;
  private subscribed: Promise<void>;

  constructor(private readonly o: DynsecOptions) {
    this.client = connectMqtt(o.url, 'dynsec', { username: o.admin.username, password: o.admin.password });
    let first: () => void = () => undefined;
    this.subscribed = new Promise<void>((resolve) => (first = resolve));
    // At each (re)connect the answers' subscription is made again (clean session), and nothing is
    // sent before the broker has acknowledged it: an answer sent before would be lost.
    this.client.on('connect', () => {
      const acked = this.client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 }).then(() => undefined);
      acked.then(first, () => undefined);
      this.subscribed = acked;
    });
    this.client.on('message', (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let replies: Reply[];
      try {
        replies = (JSON.parse(payload.toString()) as { responses?: Reply[] }).responses ?? [];
      } catch {
        return; // not ours to understand
      }
      for (const r of replies) {
        const w = r.correlationData ? this.waiting.get(r.correlationData) : undefined;
        if (w) w.resolve(r);
      }
    });
  }

  /** Sends these commands in one message; resolves with each one's answer, in order. */
  async send(commands: readonly DynsecCommand[]): Promise<Reply[]> {
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    const ready = await Promise.race([this.subscribed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
    if (!ready) throw new Error(`the dynamic-security plugin's broker at ${this.o.url} did not accept the admin login within ${timeoutMs} ms`);
    const ids = commands.map(() => `${this.prefix}-${++this.seq}`);
    const answers = ids.map((id) => new Promise<Reply>((resolve) => this.waiting.set(id, { resolve })));
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.client.publishAsync(DYNSEC_CONTROL_TOPIC, JSON.stringify({ commands: commands.map((c, i) => ({ ...c, correlationData: ids[i] })) }), { qos: 1 });
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the dynamic-security plugin did not answer ${commands.length} command(s) within ${timeoutMs} ms`)), timeoutMs);
      });
      return await Promise.race([Promise.all(answers), timeout]);
    } finally {
      clearTimeout(timer);
      for (const id of ids) this.waiting.delete(id);
    }
  }

  /** Sends and throws on any answer that is neither success nor "already as asked". */
  async run(commands: readonly DynsecCommand[]): Promise<Reply[]> {
    const replies = await this.send(commands);
    for (const r of replies) if (r.error && ALREADY[r.command] !== r.error) throw new DynsecError(r.command, r.error);
    return replies;
  }

  async close(): Promise<void> {
    await this.client.endAsync().catch(() => undefined);
  }
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export function dynsecStore(o: DynsecOptions): CredentialStore & { control: DynsecControl } {
  const control = new DynsecControl(o);
  const per = Math.max(2, o.commandsPerMessage ?? 200);

  async function put(logins: readonly MqttLogin[]): Promise<void> {
    for (const part of chunks(logins, Math.floor(per / 2))) {
      const replies = await control.run(
        part.flatMap((l) => {
          const rolename = dynsecRoleOf(l.username);
          return [
            { command: 'createRole', rolename, acls: dynsecAcls(l.username) },
            { command: 'createClient', username: l.username, password: l.password, roles: [{ rolename }] },
          ];
        }),
      );
      // Those that existed: the new password and the role (a rotation, or a retry). The plugin
      // cuts off a connection whose client is modified, as a password-file reload does.
      const existing = part.filter((_, i) => replies[2 * i + 1]!.error);
      // (An existing role is left as it is: its ACL is a function of the username.)
      const again: DynsecCommand[] = [
        ...existing.map((l) => ({ command: 'modifyClient', username: l.username, password: l.password, roles: [{ rolename: dynsecRoleOf(l.username) }] })),
        // A client an operator disabled by hand is one the platform wants in.
        ...existing.map((l) => ({ command: 'enableClient', username: l.username })),
      ];
      for (const c of chunks(again, per)) await control.run(c);
    }
  }

  async function remove(usernames: readonly string[]): Promise<void> {
    // Deleting the client cuts its connection off (measured) and refuses the next login.
    for (const part of chunks(usernames, Math.floor(per / 2))) {
      await control.run(part.flatMap((u) => [
        { command: 'deleteClient', username: u },
        { command: 'deleteRole', rolename: dynsecRoleOf(u) },
      ]));
    }
  }

  return {
    kind: 'dynsec',
    control,
    put,
    remove,
    close: () => control.close(),
    prepare: async (platformLogins) => {
      await prepareDynsec(control);
      await put(platformLogins);
    },
  };
}

/**
 * The plugin's defaults the platform relies on: nothing is allowed that no role grants (Mosquitto's
 * own default lets every client receive any message it could subscribe to). Sent once at start-up.
 */
export async function prepareDynsec(control: DynsecControl): Promise<void> {
  await control.run([
    {
      command: 'setDefaultACLAccess',
      acls: [
        { acltype: 'publishClientSend', allow: false },
        { acltype: 'publishClientReceive', allow: false },
        { acltype: 'subscribe', allow: false },
        { acltype: 'unsubscribe', allow: true },
      ],
    },
  ]);
}

/**
 * A plugin configuration file holding only the admin, as `mosquitto_ctrl dynsec init` writes one
 * (tests and benchmarks start their Mosquitto with it; operators use mosquitto_ctrl).
 */
export function dynsecInitialConfig(admin: MqttLogin): string {
  const salt = randomBytes(12);
  const iterations = 101;
  const rolename = 'rdm-dynsec-admin';
  return JSON.stringify({
    defaultACLAccess: { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: true },
    clients: [{ username: admin.username, roles: [{ rolename }], password: pbkdf2Sync(admin.password, salt, iterations, 64, 'sha512').toString('base64'), salt: salt.toString('base64'), iterations }],
    groups: [],
    roles: [{ rolename, acls: (['publishClientSend', 'publishClientReceive', 'subscribePattern'] as const).map((acltype) => ({ acltype, topic: `${DYNSEC_CONTROL_TOPIC.split('/').slice(0, 2).join('/')}/#`, priority: 0, allow: true })) }],
  });
}
