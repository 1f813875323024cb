// Seeded pseudo-random numbers: the simulation must be repeatable (tests compare runs, a fleet
// benchmark replays the same values), so nothing in firmware/ calls Math.random for values.

/** A generator of floats in [0, 1). */
export type Rng = () => number;

/** 32-bit FNV-1a of a string: turns a device ID (or any text) into a seed. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast and good enough for simulated sensors (not for anything secret). */
export function createRng(seed: number | string): Rng {
  let a = (typeof seed === 'string' ? hashSeed(seed) : seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A float in [min, max). */
export function uniform(rng: Rng, min: number, max: number): number {
  return min + (max - min) * rng();
}

/** True with the probability that an event happening `perHour` times an hour happens within dtMs. */
export function chance(rng: Rng, perHour: number, dtMs: number): boolean {
  return rng() < 1 - Math.exp((-perHour * dtMs) / 3_600_000);
}
