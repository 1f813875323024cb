#!/usr/bin/env node
// Installs the schema-based fuzzer (schemathesis, pinned) into the project's Python venv
// (.tools/venv, the one scripts/ensure-setup.js makes for the Temporal CLI). Idempotent: does
// nothing when that version is already there. Prints the binary's path on stdout.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SCHEMATHESIS_VERSION = '4.32.5';
const root = path.resolve(__dirname, '..', '..');
const venv = path.join(root, '.tools', 'venv');
const bin = path.join(venv, 'bin', 'schemathesis');

function installedVersion() {
  if (!fs.existsSync(bin)) return null;
  const r = spawnSync(path.join(venv, 'bin', 'python'), ['-c', 'import importlib.metadata as m; print(m.version("schemathesis"))'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function ensureSchemathesis() {
  if (installedVersion() === SCHEMATHESIS_VERSION) return bin;
  const python = ['python3', 'python'].find((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0);
  if (!python) throw new Error('schemathesis needs Python 3 (python3 not found)');
  process.stderr.write(`[fuzz] installing schemathesis ${SCHEMATHESIS_VERSION} into .tools/venv...\n`);
  if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `schemathesis==${SCHEMATHESIS_VERSION}`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (installedVersion() !== SCHEMATHESIS_VERSION) throw new Error(`schemathesis ${SCHEMATHESIS_VERSION} did not install`);
  return bin;
}

module.exports = { ensureSchemathesis, SCHEMATHESIS_VERSION };
if (require.main === module) process.stdout.write(`${ensureSchemathesis()}\n`);
