// What the global setup hands to every test file (through environment variables, which jest's
// worker processes inherit).
export interface TestEnv {
  databaseUrl: string;
  temporalAddress: string;
  mqttUrl: string;
  workflowBundlePath: string;
  deviceSecretKey: string;
}

export const TEST_ENV_VAR = 'RDM_TEST_ENV';

export function testEnv(): TestEnv {
  const raw = process.env[TEST_ENV_VAR];
  if (!raw) throw new Error('the test environment is missing: run the tests with `npm test` (jest global setup)');
  return JSON.parse(raw) as TestEnv;
}
