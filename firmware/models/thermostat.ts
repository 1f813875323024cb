// A room thermostat: the room drifts toward the outside temperature and is driven toward the
// setpoint when the mode lets it heat or cool (on/off control with a dead band of `hysteresisC`).
import { uniform } from './rng';
import type { DeviceModel } from './types';

const OUTSIDE_C = 16;
const ROOM_TIME_CONSTANT_MS = 600_000;

export const thermostat: DeviceModel = {
  name: 'thermostat',
  title: 'Thermostat',
  settings: {
    hysteresisC: { type: 'number', min: 0.1, max: 5, default: 0.5, description: 'How far from the setpoint the room may drift before heating or cooling starts' },
  },
  nodes: [
    {
      id: 'thermostat',
      name: 'Thermostat',
      type: 'thermostat',
      properties: [
        { id: 'setpoint', name: 'Setpoint', datatype: 'float', format: '5:30', unit: '°C', settable: true, initial: 21, rule: { kind: 'hold' } },
        { id: 'mode', name: 'Mode', datatype: 'enum', format: 'off,heat,cool,auto', settable: true, initial: 'auto', rule: { kind: 'hold' } },
        {
          id: 'temperature',
          name: 'Temperature',
          datatype: 'float',
          unit: '°C',
          initial: 19,
          rule: {
            kind: 'derive',
            compute: ({ previous, get, dtMs, rng, settings }) => {
              const t = previous as number;
              const setpoint = get('thermostat', 'setpoint') as number;
              const mode = get('thermostat', 'mode');
              const h = settings.hysteresisC as number;
              // A dead band of ±h around the setpoint where neither heating nor cooling runs.
              let target = OUTSIDE_C;
              if ((mode === 'heat' || mode === 'auto') && t < setpoint - h) target = setpoint + h;
              else if ((mode === 'cool' || mode === 'auto') && t > setpoint + h) target = setpoint - h;
              const k = 1 - Math.exp(-dtMs / ROOM_TIME_CONSTANT_MS);
              return Math.round((t + (target - t) * k + uniform(rng, -0.02, 0.02)) * 100) / 100;
            },
          },
        },
        { id: 'humidity', name: 'Humidity', datatype: 'float', format: '0:100', unit: '%', initial: 45, rule: { kind: 'walk', step: 0.5, min: 20, max: 80, decimals: 1, target: 45, pull: 0.05 } },
      ],
    },
  ],
};
