// Which credential store this process uses, from the configuration (design/contract.md
// "Configuration: MQTT"), and the logins of the platform's own clients.
import { PLATFORM_CLIENT_NAMES, type PlatformClient } from '../domain/broker-identity';
import type { CredentialDeriver } from '../domain/credentials';
import type { Config } from '../runtime/config';
import { embeddedBrokerDir } from '../runtime/services';
import { noCredentialStore, type CredentialStore, type MqttLogin } from './credential-store';
import { mosquittoFilesStore } from './mosquitto-files';
import { dynsecStore } from './dynsec';

export function platformLogin(credentials: CredentialDeriver, client: PlatformClient): MqttLogin {
  return { username: client, password: credentials.platformPassword(client) };
}

export function platformLogins(credentials: CredentialDeriver): MqttLogin[] {
  return PLATFORM_CLIENT_NAMES.map((c) => platformLogin(credentials, c));
}

/**
 * MQTT_URL unset: the embedded Mosquitto's files in DATA_DIR. An external Mosquitto with
 * MQTT_AUTH=dynsec: its dynamic-security plugin. An external broker that asks the platform
 * (`http`) or nobody (`none`), or the aedes fallback (which asks Postgres itself): nothing to mirror.
 */
export function credentialStoreFor(cfg: Config, mqttUrl: string): CredentialStore {
  if (!cfg.MQTT_URL) return cfg.EMBEDDED_BROKER === 'aedes' ? noCredentialStore : mosquittoFilesStore({ dir: embeddedBrokerDir(cfg), url: mqttUrl });
  if (cfg.MQTT_AUTH === 'dynsec') return dynsecStore({ url: mqttUrl, admin: { username: cfg.MQTT_DYNSEC_USERNAME, password: cfg.MQTT_DYNSEC_PASSWORD! } });
  return noCredentialStore;
}
