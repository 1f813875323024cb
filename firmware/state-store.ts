// The device's non-volatile memory: values and the applied configuration in one JSON file, so a
// restarted (or rebooted) device comes back with its relay state, setpoints and settings.
// Written to a temporary file then renamed: a crash mid-write leaves the previous file whole.
import fs from 'node:fs';
import path from 'node:path';
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
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const v = JSON.parse(text) as Partial<PersistedState>;
      if (v.format !== 1 || typeof v.values !== 'object' || v.values === null || typeof v.settings !== 'object' || v.settings === null) return null;
      if (v.configVersion !== null && !Number.isSafeInteger(v.configVersion)) return null;
      return v as PersistedState;
    } catch {
      return null; // a corrupt file is a factory reset, not a device that cannot boot
    }
  }

  save(state: Omit<PersistedState, 'format' | 'savedAt'>): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ format: 1, ...state, savedAt: new Date().toISOString() }, null, 2));
    fs.renameSync(tmp, this.file);
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
