// An AC wallbox: a relay the platform switches, a settable current limit, and the measurements
// that follow from them. It heats up while charging; over `temperatureLimitC` it faults (status
// `fault`, power cut, `$state` = alert) until it has cooled 5 °C below the limit.
import { uniform } from './rng';
import type { DeviceModel } from './types';

const VOLTS = 230;
const AMBIENT_C = 22;
const HEATING_C_PER_KW = 3.5;
const THERMAL_TIME_CONSTANT_MS = 120_000;
const FAULT_HYSTERESIS_C = 5;

export const evCharger: DeviceModel = {
  name: 'ev-charger',
  title: 'EV charger',
  settings: {
    temperatureLimitC: { type: 'number', min: 30, max: 120, default: 60, description: 'Over this temperature the charger stops and raises an alert' },
  },
  nodes: [
    {
      id: 'charger',
      name: 'Charger',
      type: 'ev-charger',
      properties: [
        { id: 'relay', name: 'Relay', datatype: 'boolean', settable: true, initial: false, rule: { kind: 'hold' } },
        { id: 'max-current', name: 'Current limit', datatype: 'integer', format: '6:32', unit: 'A', settable: true, initial: 16, rule: { kind: 'hold' } },
        {
          id: 'temperature',
          name: 'Temperature',
          datatype: 'float',
          unit: '°C',
          initial: AMBIENT_C,
          rule: {
            kind: 'derive',
            // First-order approach to a temperature set by the power drawn, plus sensor noise.
            compute: ({ previous, get, dtMs, rng }) => {
              const target = AMBIENT_C + ((get('charger', 'power') as number) / 1000) * HEATING_C_PER_KW;
              const k = 1 - Math.exp(-dtMs / THERMAL_TIME_CONSTANT_MS);
              const next = (previous as number) + (target - (previous as number)) * k + uniform(rng, -0.05, 0.05);
              return Math.round(next * 10) / 10;
            },
          },
        },
        {
          id: 'status',
          name: 'Status',
          datatype: 'enum',
          format: 'idle,charging,fault',
          initial: 'idle',
          rule: {
            kind: 'derive',
            compute: ({ previous, get, settings }) => {
              const t = get('charger', 'temperature') as number;
              const limit = settings.temperatureLimitC as number;
              if (t > limit || (previous === 'fault' && t > limit - FAULT_HYSTERESIS_C)) return 'fault';
              return get('charger', 'relay') === true ? 'charging' : 'idle';
            },
          },
        },
        {
          id: 'power',
          name: 'Power',
          datatype: 'float',
          unit: 'W',
          initial: 0,
          rule: {
            kind: 'derive',
            compute: ({ get, rng }) =>
              get('charger', 'status') === 'charging' ? Math.round((get('charger', 'max-current') as number) * VOLTS * uniform(rng, 0.95, 1) * 10) / 10 : 0,
          },
        },
        {
          id: 'energy',
          name: 'Energy',
          datatype: 'float',
          unit: 'kWh',
          initial: 0,
          // Not rounded: at a fast publish rate one step adds less than a rounding unit.
          rule: { kind: 'derive', compute: ({ previous, get, dtMs }) => (previous as number) + ((get('charger', 'power') as number) * dtMs) / 3_600_000_000 },
        },
      ],
    },
  ],
  alert: (get, settings) => {
    const t = get('charger', 'temperature') as number;
    const limit = settings.temperatureLimitC as number;
    return t > limit ? `temperature ${t} °C over the limit of ${limit} °C` : get('charger', 'status') === 'fault' ? 'cooling down after over-temperature' : null;
  },
};
