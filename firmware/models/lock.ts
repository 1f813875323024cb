// A door lock on batteries: the platform locks and unlocks it; the door opens and closes now and
// then while unlocked; the battery runs down and is replaced. Low battery is an alert.
import { chance } from './rng';
import type { DeviceModel } from './types';

const DOOR_MOVES_PER_HOUR = 12;

export const lock: DeviceModel = {
  name: 'lock',
  title: 'Door lock',
  settings: {
    lowBatteryPct: { type: 'integer', min: 0, max: 50, default: 10, description: 'Under this battery level the lock raises an alert' },
  },
  nodes: [
    {
      id: 'lock',
      name: 'Lock',
      type: 'lock',
      properties: [
        { id: 'locked', name: 'Locked', datatype: 'boolean', settable: true, initial: true, rule: { kind: 'hold' } },
        { id: 'battery', name: 'Battery', datatype: 'integer', format: '0:100', unit: '%', initial: 100, rule: { kind: 'drain', perHour: 0.5, min: 0, max: 100 } },
        {
          id: 'door',
          name: 'Door',
          datatype: 'enum',
          format: 'open,closed',
          initial: 'closed',
          rule: {
            kind: 'derive',
            // A locked bolt keeps the door as it is; unlocked, people come and go.
            compute: ({ previous, get, dtMs, rng }) =>
              get('lock', 'locked') === true || !chance(rng, DOOR_MOVES_PER_HOUR, dtMs) ? previous : previous === 'open' ? 'closed' : 'open',
          },
        },
      ],
    },
  ],
  alert: (get, settings) => {
    const b = get('lock', 'battery') as number;
    return b < (settings.lowBatteryPct as number) ? `battery low (${b} %)` : null;
  },
};
