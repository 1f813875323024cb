import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findTemporalCli, findTemporalTestServer } from './temporal-cli';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-temporal-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function fakeBinary(dir: string, name: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, '#!/bin/sh\n', { mode: 0o755 });
  return file;
}

test('order: the env variable, then <root>/.tools/venv/bin, then PATH', () => {
  const root = path.join(tmp, 'project');
  const onPath = path.join(tmp, 'path-bin');
  const pathCli = fakeBinary(onPath, 'temporal');
  const pathTs = fakeBinary(onPath, 'temporal-test-server');
  const env = { PATH: `/nonexistent${path.delimiter}${onPath}` };

  expect(findTemporalCli(root, env)).toBe(pathCli);
  expect(findTemporalTestServer(root, env)).toBe(pathTs);

  const venvCli = fakeBinary(path.join(root, '.tools', 'venv', 'bin'), 'temporal');
  const venvTs = fakeBinary(path.join(root, '.tools', 'venv', 'bin'), 'temporal-test-server');
  expect(findTemporalCli(root, env)).toBe(venvCli);
  expect(findTemporalTestServer(root, env)).toBe(venvTs);

  const explicit = fakeBinary(path.join(tmp, 'elsewhere'), 'my-temporal');
  expect(findTemporalCli(root, { ...env, TEMPORAL_CLI_PATH: explicit })).toBe(explicit);
  expect(findTemporalTestServer(root, { ...env, TEMPORAL_TEST_SERVER_PATH: explicit })).toBe(explicit);
});

test('nothing found is null; a non-executable file does not count', () => {
  const dir = path.join(tmp, 'noexec');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'temporal'), 'not executable', { mode: 0o644 });
  expect(findTemporalCli(path.join(tmp, 'empty-root'), { PATH: dir })).toBeNull();
  expect(findTemporalTestServer(path.join(tmp, 'empty-root'), { PATH: '' })).toBeNull();
});

test('an env variable that points at nothing is an error, not a silent fallback', () => {
  expect(() => findTemporalCli(tmp, { TEMPORAL_CLI_PATH: path.join(tmp, 'missing') })).toThrow(/TEMPORAL_CLI_PATH=.* is not an executable file/);
});
