/** Tests run TypeScript through SWC (ts-jest does not support the TypeScript we pin against). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/data/', '/.tools/'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60_000,
  // Two cores: integration test files share one Temporal dev server and one Postgres.
  maxWorkers: 2,
  // The Temporal native runtime keeps handles open after the last test; the suite's own teardown stops every service.
  forceExit: true,
};
