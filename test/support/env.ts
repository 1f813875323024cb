// What the global setup hands to every test file (through environment variables, which jest's
// worker processes inherit).
export interface TestEnv {
  databaseUrl: string;
  temporalAddress: string;
  /** The broker, with the tools client's login in the URL: what tests' own helper clients use. */
  mqttUrl: string;
  /** The broker's address alone (what devices and the platform's clients are given). */
  brokerUrl: string;
  /** The broker's password and ACL files (broker/mosquitto-files.ts); null: a broker without them. */
  brokerDir: string | null;
  workflowBundlePath: string;
  deviceSecretKey: string;
}

export const TEST_ENV_VAR = 'RDM_TEST_ENV';

export function testEnv(): TestEnv {
  const raw = process.env[TEST_ENV_VAR];
  if (!raw) throw new Error('the test environment is missing: run the tests with `npm test` (jest global setup)');
  return JSON.parse(raw) as TestEnv;
}
