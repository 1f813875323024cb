import { ANY, DEFAULT_PROPERTY_ACCESS, resolveAccess, sees, sets, SETTINGS_NODE, type PropertyAccessRule } from './sharing';

const rule = (model: string, node: string, property: string, visibleTo: PropertyAccessRule['visibleTo'], settableBy: PropertyAccessRule['settableBy'] = []): PropertyAccessRule => ({ model, node, property, visibleTo, settableBy });

describe('resolveAccess', () => {
  const rules = [
    rule(ANY, ANY, ANY, ['owner', 'serviceman']),
    rule(ANY, 'diag', ANY, ['serviceman']),
    rule('ev-charger', 'diag', 'voltage', ['owner', 'serviceman', 'viewer']),
    rule('ev-charger', ANY, 'relay', ['owner'], ['owner']),
    rule('ev-charger', SETTINGS_NODE, 'wifi', [], []),
  ];

  it('takes the most specific rule: the model before any model, then node and property, node, property, any', () => {
    expect(resolveAccess(rules, 'ev-charger', 'diag', 'voltage').visibleTo).toEqual(['owner', 'serviceman', 'viewer']);
    expect(resolveAccess(rules, 'ev-charger', 'diag', 'current').visibleTo).toEqual(['serviceman']);
    expect(resolveAccess(rules, 'ev-charger', 'charger', 'relay')).toEqual({ visibleTo: ['owner'], settableBy: ['owner'] });
    // A model's own rule beats a more specific one for any model.
    expect(resolveAccess(rules, 'ev-charger', 'diag', 'relay').visibleTo).toEqual(['owner']);
    expect(resolveAccess(rules, 'lock', 'diag', 'voltage').visibleTo).toEqual(['serviceman']);
    expect(resolveAccess(rules, null, 'x', 'y').visibleTo).toEqual(['owner', 'serviceman']);
  });

  it('keeps settings apart from sensors: a wildcard node never matches a setting', () => {
    expect(resolveAccess(rules, 'lock', SETTINGS_NODE, 'interval')).toBe(DEFAULT_PROPERTY_ACCESS);
    expect(resolveAccess(rules, 'ev-charger', SETTINGS_NODE, 'wifi').visibleTo).toEqual([]);
  });

  it('falls back to the default without rules', () => {
    expect(resolveAccess([], 'm', 'n', 'p')).toBe(DEFAULT_PROPERTY_ACCESS);
  });
});

describe('sees / sets', () => {
  it('lets staff through, and the others as declared; setting needs seeing', () => {
    const a = { visibleTo: ['owner' as const], settableBy: ['owner' as const, 'serviceman' as const] };
    expect(sees('staff', a) && sets('staff', a)).toBe(true);
    expect([sees('owner', a), sets('owner', a)]).toEqual([true, true]);
    expect([sees('serviceman', a), sets('serviceman', a)]).toEqual([false, false]);
    expect([sees('viewer', DEFAULT_PROPERTY_ACCESS), sets('viewer', DEFAULT_PROPERTY_ACCESS)]).toEqual([true, false]);
  });
});
