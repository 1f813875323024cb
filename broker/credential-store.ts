// Where device logins reach the broker (design/contract.md "Configuration: MQTT"). Postgres is the
// system of record; a store only mirrors it into a broker that cannot ask the platform itself.
// Every operation is idempotent: putting a login that is there, or removing one that is gone,
// changes nothing, so an activity may repeat it after a crash or a broker restart.

export interface MqttLogin {
  username: string;
  password: string;
}

export interface CredentialStore {
  /** What it is, for logs and docs. */
  readonly kind: 'mosquitto-files' | 'dynsec' | 'none';
  /** Adds or replaces these logins; resolves once the broker accepts them. */
  put(logins: readonly MqttLogin[]): Promise<void>;
  /** Removes these usernames; resolves once the broker refuses them (and has cut off their connections). */
  remove(usernames: readonly string[]): Promise<void>;
  close(): Promise<void>;
  /**
   * For a store that is the only record of logins in its broker (the dynamic-security plugin's):
   * readies it and puts the platform's own clients, at the worker's start, so that the api and the
   * bridge can log in. The embedded Mosquitto's files get them from `npm start`'s rebuild instead.
   */
  prepare?(platformLogins: readonly MqttLogin[]): Promise<void>;
}

/** `MQTT_AUTH=http` or `none`, and aedes: the broker asks the platform (or nobody); nothing to mirror. */
export const noCredentialStore: CredentialStore = {
  kind: 'none',
  put: async () => undefined,
  remove: async () => undefined,
  close: async () => undefined,
};
