import { compareSemVer, isSemVer, parseSemVer } from './semver';

it('accepts semantic versions only', () => {
  for (const v of ['1.0.0', '0.0.1', '10.20.30', '1.0.0-rc.1', '1.0.0-alpha-a.b-c', '1.0.0+build.7', '1.2.3-beta.11+sha.5114f85']) expect([v, isSemVer(v)]).toEqual([v, true]);
  for (const v of ['', '1', '1.0', 'v1.0.0', '01.0.0', '1.0.0-', '1.0.0-01', '1.0.0+', ' 1.0.0', '1.0.0\n', `1.0.0-${'a'.repeat(80)}`, '99999999999999999999.0.0']) expect([v, isSemVer(v)]).toEqual([v, false]);
  expect(parseSemVer('1.2.3-rc.1')).toEqual({ major: 1, minor: 2, patch: 3, pre: ['rc', '1'] });
});

it('orders by precedence, as semver.org says', () => {
  const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '2.0.0', '10.0.0'];
  for (let i = 0; i < ordered.length - 1; i++) {
    expect([ordered[i], compareSemVer(ordered[i]!, ordered[i + 1]!)]).toEqual([ordered[i], -1]);
    expect(compareSemVer(ordered[i + 1]!, ordered[i]!)).toBe(1);
  }
  expect(compareSemVer('1.0.0+a', '1.0.0+b')).toBe(0);
  expect(() => compareSemVer('1.0', '1.0.0')).toThrow(/not a semantic version/);
});
