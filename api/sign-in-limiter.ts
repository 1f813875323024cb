// Sign-in attempts, limited per account and per client address (token buckets, in this process).
// Each attempt takes a token from three buckets before the password is checked (so a burst of
// parallel guesses is limited as much as a sequence), and a success gives its tokens back:
//   - email + address: 5 at once, then one per 30 s: one client guessing one account;
//   - address: 30 at once, then one per 2 s: one client spraying many accounts;
//   - email: 20 at once, then one per 15 s: many clients guessing one account.
// An attacker can therefore keep an account's owner waiting, but never more than 15 s (the email
// bucket's refill) for the next attempt, instead of locking it; and the owner's own address has
// its own bucket. Several API instances each keep their own counts (a multiple of the limits).
export interface BucketRule {
  name: string;
  key: (email: string, address: string) => string;
  burst: number;
  refillMs: number;
}

export const SIGN_IN_RULES: BucketRule[] = [
  { name: 'account from this address', key: (e, a) => `ea:${e}\0${a}`, burst: 5, refillMs: 30_000 },
  { name: 'address', key: (_e, a) => `a:${a}`, burst: 30, refillMs: 2_000 },
  { name: 'account', key: (e) => `e:${e}`, burst: 20, refillMs: 15_000 },
];

/** Open sign-up costs a password hash per call: one address may make 10 accounts at once, then one per 6 s. */
export const SIGN_UP_RULES: BucketRule[] = [{ name: 'address', key: (_e, a) => `a:${a}`, burst: 10, refillMs: 6_000 }];

interface Bucket {
  tokens: number;
  at: number;
}

export class SignInLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rules: BucketRule[] = SIGN_IN_RULES,
    private readonly now: () => number = Date.now,
    /** Buckets remembered; the oldest go first (a full bucket is the same as a forgotten one). */
    private readonly maxBuckets = 100_000,
  ) {}

  private level(key: string, rule: BucketRule, t: number): Bucket {
    const b = this.buckets.get(key) ?? { tokens: rule.burst, at: t };
    const tokens = Math.min(rule.burst, b.tokens + (t - b.at) / rule.refillMs);
    return { tokens, at: t };
  }

  private store(key: string, b: Bucket, rule: BucketRule): void {
    this.buckets.delete(key);
    if (b.tokens >= rule.burst) return; // full: nothing to remember
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value!);
  }

  /** Takes an attempt: 0 when it may go ahead, else the seconds until it may (nothing taken then). */
  take(email: string, address: string): number {
    const t = this.now();
    const levels = this.rules.map((rule) => ({ rule, key: rule.key(email, address), b: this.level(rule.key(email, address), rule, t) }));
    const waitMs = Math.max(0, ...levels.map(({ rule, b }) => (b.tokens >= 1 ? 0 : (1 - b.tokens) * rule.refillMs)));
    if (waitMs > 0) return Math.ceil(waitMs / 1000);
    for (const { rule, key, b } of levels) this.store(key, { tokens: b.tokens - 1, at: t }, rule);
    return 0;
  }

  /** A successful sign-in gives its attempt back (a user who types their password right is not slowed). */
  refund(email: string, address: string): void {
    const t = this.now();
    for (const rule of this.rules) {
      const key = rule.key(email, address);
      const b = this.level(key, rule, t);
      this.store(key, { tokens: Math.min(rule.burst, b.tokens + 1), at: t }, rule);
    }
  }
}
