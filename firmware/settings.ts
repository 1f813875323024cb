// The settings a device understands: the common ones and its model's. Desired configuration is
// an open JSON object (domain/device-messages.ts): keys the device knows are checked and used,
// other keys are kept and reported back unchanged (a newer platform may send more than an
// older firmware knows, and must see them echoed rather than silently dropped).
import { LOG_LEVELS, type Settings } from '../domain/device-messages';
import type { DeviceModel, SettingSpec } from './models/types';

export const COMMON_SETTINGS: Readonly<Record<string, SettingSpec>> = {
  publishIntervalMs: { type: 'integer', min: 10, max: 86_400_000, default: 5_000, description: 'How often every value is published (ms)' },
  logLevel: { type: 'enum', options: LOG_LEVELS, default: 'info', description: 'Lowest level published on $rdm/log' },
  statsIntervalS: { type: 'integer', min: 1, max: 86_400, default: 60, description: 'Homie 3: how often $stats/uptime is published (s)' },
};

export function settingSpecs(model: DeviceModel): Record<string, SettingSpec> {
  return { ...COMMON_SETTINGS, ...model.settings };
}

export function defaultSettings(specs: Readonly<Record<string, SettingSpec>>): Settings {
  const out: Settings = {};
  for (const [key, spec] of Object.entries(specs)) out[key] = spec.default;
  return out;
}

/** Why a value does not fit its spec, or null. */
export function checkSetting(spec: SettingSpec, value: unknown): string | null {
  switch (spec.type) {
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'must be a number';
      if (spec.type === 'integer' && !Number.isSafeInteger(value)) return 'must be an integer';
      if (value < spec.min || value > spec.max) return `must be between ${spec.min} and ${spec.max}`;
      return null;
    }
    case 'enum':
      return typeof value === 'string' && spec.options.includes(value) ? null : `must be one of: ${spec.options.join(', ')}`;
    case 'boolean':
      return typeof value === 'boolean' ? null : 'must be true or false';
  }
}

export interface SettingsCheck {
  /** What the device runs with: the incoming settings, a rejected key keeping its previous value. */
  settings: Settings;
  rejected: { key: string; reason: string }[];
}

/**
 * Applies a whole desired settings object. A known key with a bad value keeps its previous value
 * (or stays unset), so one bad key never throws the rest of the configuration away; the report
 * then differs from the desired configuration and the platform sees why in `$rdm/log`.
 */
export function applySettings(specs: Readonly<Record<string, SettingSpec>>, incoming: Settings, previous: Settings): SettingsCheck {
  const settings: Settings = {};
  const rejected: SettingsCheck['rejected'] = [];
  for (const [key, value] of Object.entries(incoming)) {
    const spec = Object.prototype.hasOwnProperty.call(specs, key) ? specs[key] : undefined;
    const reason = spec ? checkSetting(spec, value) : null;
    if (reason) {
      rejected.push({ key, reason });
      if (Object.prototype.hasOwnProperty.call(previous, key)) settings[key] = previous[key];
    } else {
      settings[key] = value;
    }
  }
  return { settings, rejected };
}

export { mergePatch } from '../domain/settings';
