// Semantic versions (semver.org 2.0.0) for firmware: parsed strictly, compared by precedence.
// Pure: the rollout and auto-update workflows compare versions too.

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  /** Dot-separated pre-release identifiers (`rc.1`); empty for a release. */
  pre: string[];
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
/** Longest version accepted: it is a topic payload, a column and a file name part. */
export const MAX_VERSION_LENGTH = 64;

export function parseSemVer(v: string): SemVer | null {
  if (v.length > MAX_VERSION_LENGTH) return null;
  const m = SEMVER.exec(v);
  if (!m) return null;
  const [major, minor, patch] = [m[1], m[2], m[3]].map(Number) as [number, number, number];
  if (![major, minor, patch].every(Number.isSafeInteger)) return null;
  return { major, minor, patch, pre: m[4] ? m[4].split('.') : [] };
}

export const isSemVer = (v: string): boolean => parseSemVer(v) !== null;

function comparePre(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return Math.sign(b.length - a.length); // a release ranks above its pre-releases
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) {
      const d = Number(x) - Number(y);
      if (d !== 0) return Math.sign(d);
    } else if (xn !== yn) return xn ? -1 : 1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

/** -1, 0 or 1 by precedence (build metadata ignored); throws on a version that is not semver. */
export function compareSemVer(a: string, b: string): number {
  const x = parseSemVer(a);
  const y = parseSemVer(b);
  if (!x || !y) throw new Error(`not a semantic version: ${JSON.stringify(x ? b : a)}`);
  for (const k of ['major', 'minor', 'patch'] as const) if (x[k] !== y[k]) return Math.sign(x[k] - y[k]);
  return comparePre(x.pre, y.pre);
}
