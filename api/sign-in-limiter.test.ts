import { SignInLimiter } from './sign-in-limiter';

describe('SignInLimiter', () => {
  let clock = 0;
  const limiter = () => new SignInLimiter(undefined, () => clock);
  beforeEach(() => (clock = 1_000_000));

  it('lets 5 attempts on one account from one address through, then says how long to wait', () => {
    const l = limiter();
    for (let i = 0; i < 5; i++) expect(l.take('a@x.io', '10.0.0.1')).toBe(0);
    expect(l.take('a@x.io', '10.0.0.1')).toBe(30);
    clock += 29_000;
    expect(l.take('a@x.io', '10.0.0.1')).toBe(1);
    clock += 1_000;
    expect(l.take('a@x.io', '10.0.0.1')).toBe(0);
  });

  it('keeps another address free to sign in to the same account', () => {
    const l = limiter();
    for (let i = 0; i < 5; i++) l.take('a@x.io', '10.0.0.1');
    expect(l.take('a@x.io', '10.0.0.1')).toBeGreaterThan(0);
    expect(l.take('a@x.io', '10.0.0.2')).toBe(0);
  });

  it('limits many addresses guessing one account, but only for the refill time of one attempt', () => {
    const l = limiter();
    for (let i = 0; i < 20; i++) expect(l.take('a@x.io', `10.0.1.${i}`)).toBe(0);
    expect(l.take('a@x.io', '10.0.2.1')).toBe(15);
    clock += 15_000;
    expect(l.take('a@x.io', '10.0.2.1')).toBe(0);
  });

  it('limits one address spraying many accounts', () => {
    const l = limiter();
    for (let i = 0; i < 30; i++) expect(l.take(`u${i}@x.io`, '10.0.0.9')).toBe(0);
    expect(l.take('another@x.io', '10.0.0.9')).toBe(2);
  });

  it('gives a successful attempt back', () => {
    const l = limiter();
    for (let i = 0; i < 10; i++) {
      expect(l.take('a@x.io', '10.0.0.1')).toBe(0);
      l.refund('a@x.io', '10.0.0.1');
    }
  });

  it('remembers at most maxBuckets buckets', () => {
    const l = new SignInLimiter(undefined, () => clock, 100);
    for (let i = 0; i < 1_000; i++) l.take(`u${i}@x.io`, `10.1.${i >> 8}.${i & 255}`);
    expect((l as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(100);
  });
});
