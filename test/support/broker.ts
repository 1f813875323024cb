// Test support: the run's broker as the product sees it. Logins for devices that tests simulate
// without provisioning them, and the worker's credential store.
import { noCredentialStore, type CredentialStore } from '../../broker/credential-store';
import { mosquittoFilesStore } from '../../broker/mosquitto-files';
import { deviceMqttUsername } from '../../domain/broker-identity';
import { testEnv } from './env';

let shared: CredentialStore | null = null;

/** The credential store of the run's broker (the product's own kind), or none without one. */
export function testCredentialStore(): CredentialStore {
  const env = testEnv();
  return (shared ??= env.brokerDir ? mosquittoFilesStore({ dir: env.brokerDir, url: env.brokerUrl }) : noCredentialStore);
}

/** Lets these simulated devices log in (username: the Homie ID, as for a provisioned device). */
export async function registerDevices(devices: readonly { deviceId: string; secret: string }[]): Promise<void> {
  await testCredentialStore().put(devices.map((d) => ({ username: deviceMqttUsername(d.deviceId), password: d.secret })));
}
