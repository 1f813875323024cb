import { mergePatch, pendingSettings, sameJson } from './settings';

describe('settings', () => {
  it('merges a patch as RFC 7386 says', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { a: null, b: { c: null, x: 1 }, e: [2], f: 'new' })).toEqual({ b: { d: 3, x: 1 }, e: [2], f: 'new' });
    expect(mergePatch({ a: 'text' }, { a: { b: 1 } })).toEqual({ a: { b: 1 } });
  });

  it('compares JSON by value, not by key order', () => {
    expect(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
  });

  it('lists what the device lacks, ignoring settings only the device has', () => {
    expect(pendingSettings({ a: 1, b: 2 }, { a: 1, b: 3, local: true })).toEqual({ b: 2 });
    expect(pendingSettings({}, {})).toEqual({});
  });
});
