// A device model is data: its Homie nodes and properties, how each value evolves in simulated
// time, the settings it understands and when it raises an alert. The Device class knows no model.
import type { Datatype, HomieValue, PropertySpec } from '../../domain/homie';
import type { Settings } from '../../domain/device-messages';
import type { Rng } from './rng';

/** What a rule sees while computing a property's next value. */
export interface RuleContext {
  /** The property's value before this step. */
  previous: HomieValue;
  /** Any value of the device by node and property ID (earlier properties already stepped). */
  get(node: string, property: string): HomieValue;
  /** Simulated time of this step. */
  dtMs: number;
  rng: Rng;
  /** The device's effective settings (model defaults filled in). */
  settings: Readonly<Settings>;
}

export type SimulationRule =
  /** Changes only through `/set` or a local change (actuators, setpoints). */
  | { kind: 'hold' }
  /** Random walk with mean reversion toward `target` (the middle of the range when absent). */
  | { kind: 'walk'; step: number; min: number; max: number; decimals: number; target?: number; pull?: number }
  /** Drops by one unit at `perHour` on average; back to `max` (a new battery) after `min`. */
  | { kind: 'drain'; perHour: number; min: number; max: number }
  /** Any other behaviour; must return a value valid for the property's datatype and format. */
  | { kind: 'derive'; compute: (ctx: RuleContext) => HomieValue };

export interface PropertyModel extends PropertySpec {
  id: string;
  name: string;
  datatype: Datatype;
  initial: HomieValue;
  rule: SimulationRule;
}

export interface NodeModel {
  id: string;
  name: string;
  type: string;
  properties: readonly PropertyModel[];
}

export type SettingSpec =
  | { type: 'integer' | 'number'; min: number; max: number; default: number; description: string }
  | { type: 'enum'; options: readonly string[]; default: string; description: string }
  | { type: 'boolean'; default: boolean; description: string };

/** Reads the device's values by node and property (the alert rule's view). */
export type ValueReader = (node: string, property: string) => HomieValue;

export interface DeviceModel {
  /** Registry key, also the `model` column of devices.csv when it names one of these. */
  name: string;
  /** Default `$name` prefix. */
  title: string;
  nodes: readonly NodeModel[];
  /** Settings this model understands on top of the common ones (firmware/settings.ts). */
  settings: Readonly<Record<string, SettingSpec>>;
  /** A reason when the device should be in `$state` = alert, else null. Checked after every change. */
  alert?: (get: ValueReader, settings: Readonly<Settings>) => string | null;
}
