import { encodeValue, isDatatype } from '../../domain/homie';
import { HOMIE_ID_PATTERN } from '../../domain/topics';
import { applySettings, defaultSettings, mergePatch, settingSpecs } from '../settings';
import { findModel, getModel, MODELS, MODEL_NAMES } from './index';
import { createRng, hashSeed } from './rng';
import { Simulation } from './simulation';
import type { DeviceModel } from './types';

function run(model: DeviceModel, seed: number | string, steps: number, dtMs: number, settings = defaultSettings(settingSpecs(model)), before?: (sim: Simulation, step: number) => void) {
  const sim = new Simulation(model, createRng(seed), () => settings);
  const trace: string[][] = [];
  for (let s = 0; s < steps; s++) {
    before?.(sim, s);
    sim.step(dtMs);
    trace.push([...sim.payloads]);
  }
  return { sim, trace };
}

describe('models', () => {
  it('has the three reference models under their names', () => {
    expect(MODEL_NAMES.sort()).toEqual(['ev-charger', 'lock', 'thermostat']);
    expect(getModel('thermostat').nodes[0]!.id).toBe('thermostat');
    expect(findModel('TH-200')).toBeNull();
    expect(findModel('toString')).toBeNull();
    expect(() => getModel('toaster')).toThrow(/unknown device model "toaster"/);
  });

  it.each(MODEL_NAMES)('%s: valid Homie IDs, datatypes, formats and initial values', (name) => {
    const m = MODELS[name]!;
    for (const node of m.nodes) {
      expect(node.id).toMatch(HOMIE_ID_PATTERN);
      for (const p of node.properties) {
        expect(p.id).toMatch(HOMIE_ID_PATTERN);
        expect(isDatatype(p.datatype)).toBe(true);
        if (p.datatype === 'enum') expect(p.format).toBeTruthy();
        expect(encodeValue(p, p.initial)).toMatchObject({ ok: true });
      }
    }
  });

  it.each(MODEL_NAMES)('%s: every simulated value stays valid for its datatype and format (2000 steps)', (name) => {
    const m = MODELS[name]!;
    const { sim } = run(m, 'validity', 2000, 60_000, undefined, (s, step) => {
      // Exercise the settable properties too, so derived rules see every mode.
      for (const [i, p] of s.props.entries()) {
        if (!p.property.settable) continue;
        const choices = p.property.datatype === 'boolean' ? [true, false] : p.property.datatype === 'enum' ? p.property.format!.split(',') : null;
        if (choices && step % 97 === 0) s.set(i, choices[(step / 97) % choices.length]!);
      }
      for (const [i, p] of s.props.entries()) expect(encodeValue(p.property, s.values[i])).toMatchObject({ ok: true });
    });
    expect(sim.values).toHaveLength(m.nodes.reduce((n, node) => n + node.properties.length, 0));
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const m = getModel('thermostat');
    const a = run(m, 'ABCDEFGHJKMN', 50, 5_000).trace;
    const b = run(m, 'ABCDEFGHJKMN', 50, 5_000).trace;
    const c = run(m, 'ABCDEFGHJKMP', 50, 5_000).trace;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(hashSeed('x')).toBe(hashSeed('x'));
    const r = createRng(42);
    const xs = Array.from({ length: 1000 }, () => r());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('ev-charger: charges when the relay is on, integrates energy, faults over the temperature limit', () => {
    const m = getModel('ev-charger');
    const settings = defaultSettings(settingSpecs(m));
    const sim = new Simulation(m, createRng(1), () => settings);
    sim.step(1_000);
    expect(sim.get('charger', 'status')).toBe('idle');
    expect(sim.get('charger', 'power')).toBe(0);
    sim.set(sim.indexOf('charger', 'relay'), true);
    sim.set(sim.indexOf('charger', 'max-current'), 32);
    let energy = 0;
    for (let i = 0; i < 60; i++) {
      sim.step(60_000); // one simulated hour
      energy += ((sim.get('charger', 'power') as number) * 60_000) / 3_600_000_000;
    }
    expect(sim.get('charger', 'status')).toBe('charging');
    const power = sim.get('charger', 'power') as number;
    expect(power).toBeGreaterThan(32 * 230 * 0.95 - 1);
    expect(power).toBeLessThanOrEqual(32 * 230);
    expect(sim.get('charger', 'energy')).toBeCloseTo(energy, 9);
    expect(energy).toBeGreaterThan(6.9); // ~7.2 kW for an hour
    // After an hour at 7.4 kW the charger sits near 22 + 7.4 × 3.5 ≈ 47.8 °C, under the default limit.
    expect(sim.get('charger', 'temperature')).toBeGreaterThan(45);
    expect(m.alert!(sim.get.bind(sim), settings)).toBeNull();
    // A lower limit: the next step faults, power is cut, the model asks for an alert.
    settings.temperatureLimitC = 40;
    sim.step(1_000);
    expect(sim.get('charger', 'status')).toBe('fault');
    expect(m.alert!(sim.get.bind(sim), settings)).toMatch(/over the limit of 40/);
    sim.step(1_000);
    expect(sim.get('charger', 'power')).toBe(0);
    // It cools down, and resumes only 5 °C under the limit (hysteresis).
    for (let i = 0; i < 200 && sim.get('charger', 'status') === 'fault'; i++) sim.step(10_000);
    expect(sim.get('charger', 'status')).toBe('charging');
    expect(sim.get('charger', 'temperature')).toBeLessThanOrEqual(35);
  });

  it('thermostat: heats toward the setpoint, drifts to the outside when off', () => {
    const m = getModel('thermostat');
    const settings = defaultSettings(settingSpecs(m));
    const sim = new Simulation(m, createRng(2), () => settings);
    sim.set(sim.indexOf('thermostat', 'setpoint'), 25);
    for (let i = 0; i < 200; i++) sim.step(60_000);
    expect(Math.abs((sim.get('thermostat', 'temperature') as number) - 25)).toBeLessThan(1.5);
    sim.set(sim.indexOf('thermostat', 'mode'), 'off');
    for (let i = 0; i < 300; i++) sim.step(60_000);
    expect(Math.abs((sim.get('thermostat', 'temperature') as number) - 16)).toBeLessThan(0.5);
  });

  it('lock: the door stays as it is while locked; the battery drains and raises an alert when low', () => {
    const m = getModel('lock');
    const settings = defaultSettings(settingSpecs(m));
    const sim = new Simulation(m, createRng(3), () => settings);
    for (let i = 0; i < 500; i++) sim.step(60_000);
    expect(sim.get('lock', 'door')).toBe('closed');
    sim.set(sim.indexOf('lock', 'locked'), false);
    const seen = new Set<unknown>();
    for (let i = 0; i < 500; i++) {
      sim.step(60_000);
      seen.add(sim.get('lock', 'door'));
    }
    expect(seen).toEqual(new Set(['open', 'closed']));
    expect(sim.get('lock', 'battery')).toBeLessThan(100);
    sim.set(sim.indexOf('lock', 'battery'), 5);
    expect(m.alert!(sim.get.bind(sim), settings)).toBe('battery low (5 %)');
  });

  it('restores saved values, skipping the ones that no longer fit', () => {
    const sim = new Simulation(getModel('ev-charger'), createRng(1), () => defaultSettings(settingSpecs(getModel('ev-charger'))));
    const skipped = sim.restore({ 'charger/relay': true, 'charger/max-current': 99, 'charger/gone': 1, 'charger/energy': 12.5 });
    expect(skipped.sort()).toEqual(['charger/gone', 'charger/max-current']);
    expect(sim.snapshot()).toMatchObject({ 'charger/relay': true, 'charger/max-current': 16, 'charger/energy': 12.5 });
    expect(sim.payloads[sim.indexOf('charger', 'relay')]).toBe('true');
  });
});

describe('settings', () => {
  const specs = settingSpecs(getModel('ev-charger'));

  it('keeps unknown keys, checks known ones, a bad key keeps its previous value', () => {
    const r = applySettings(specs, { temperatureLimitC: 500, logLevel: 'debug', custom: { a: 1 } }, { temperatureLimitC: 70 });
    expect(r.settings).toEqual({ temperatureLimitC: 70, logLevel: 'debug', custom: { a: 1 } });
    expect(r.rejected).toEqual([{ key: 'temperatureLimitC', reason: 'must be between 30 and 120' }]);
    expect(applySettings(specs, { publishIntervalMs: 1.5 }, {}).rejected[0]!.reason).toBe('must be an integer');
    expect(applySettings(specs, { logLevel: 'loud' }, {}).settings).toEqual({});
  });

  it('merge patch (RFC 7386)', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: null, e: 4 }, f: [1] })).toEqual({ b: { d: 3, e: 4 }, f: [1] });
  });
});
