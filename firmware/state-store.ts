// The device's non-volatile memory: values and the applied configuration in one JSON file, so a
// restarted (or rebooted) device comes back with its relay state, setpoints and settings.
// Written to a temporary file then renamed: a crash mid-write leaves the previous file whole.
import fs from 'node:fs';
import path from 'node:path';
import { readJsonFile, writeJsonFile } from './json-file';
import type { Settings } from '../domain/device-messages';
import type { HomieValue } from '../domain/homie';

export interface PersistedState {
  format: 1;
  deviceId: string;
  model: string;
  values: Record<string, HomieValue>;
  /** null until a desired configuration was applied. */
  configVersion: number | null;
  settings: Settings;
  savedAt: string;
}

export class StateStore {
  readonly file: string;

  constructor(dir: string, deviceId: string) {
    this.file = path.join(dir, `${deviceId}.json`);
  }

  /** The saved state, or null when there is none (first boot) or it is unreadable. */
  load(): PersistedState | null {
    const v = readJsonFile(this.file) as Partial<PersistedState> | null;
    if (v === null || typeof v !== 'object') return null;
    if (v.format !== 1 || typeof v.values !== 'object' || v.values === null || typeof v.settings !== 'object' || v.settings === null) return null;
    if (v.configVersion !== null && !Number.isSafeInteger(v.configVersion)) return null;
    return v as PersistedState;
  }

  save(state: Omit<PersistedState, 'format' | 'savedAt'>): void {
    writeJsonFile(this.file, { format: 1, ...state, savedAt: new Date().toISOString() });
  }

  /** For the self-test: can the device still write its memory? */
  writable(): boolean {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      fs.accessSync(path.dirname(this.file), fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }
}
