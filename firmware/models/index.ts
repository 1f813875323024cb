// The models by name, so a test or a benchmark can ask for any mix ("ev-charger", "thermostat",
// "lock"). Adding a model is adding a data file and a line here.
import { evCharger } from './ev-charger';
import { lock } from './lock';
import { thermostat } from './thermostat';
import type { DeviceModel } from './types';

export type { DeviceModel, NodeModel, PropertyModel, SettingSpec, SimulationRule, RuleContext } from './types';

export const MODELS: Readonly<Record<string, DeviceModel>> = Object.freeze({
  [evCharger.name]: evCharger,
  [thermostat.name]: thermostat,
  [lock.name]: lock,
});

export const MODEL_NAMES = Object.keys(MODELS);

export function findModel(name: string | null | undefined): DeviceModel | null {
  if (!name) return null;
  return Object.prototype.hasOwnProperty.call(MODELS, name) ? MODELS[name]! : null;
}

export function getModel(name: string): DeviceModel {
  const m = findModel(name);
  if (!m) throw new Error(`unknown device model "${name}" (known: ${MODEL_NAMES.join(', ')})`);
  return m;
}
