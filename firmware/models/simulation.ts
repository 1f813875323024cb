// Runs a model's rules: one flat array of values (node by node, property by property, in the
// model's order) so the publish hot path indexes arrays instead of building keys, and each value
// keeps its payload string, rebuilt only when the value changes.
import type { Settings } from '../../domain/device-messages';
import { encodeValue, type HomieValue } from '../../domain/homie';
import type { Rng } from './rng';
import type { DeviceModel, NodeModel, PropertyModel, RuleContext } from './types';

export interface SimProperty {
  node: NodeModel;
  property: PropertyModel;
  /** "node/property": the key of persisted values and counters. */
  key: string;
}

/** The payload of a value already known to be valid (the hot path: no checks). */
export function payloadOf(value: HomieValue): string {
  return typeof value === 'string' ? value : String(value);
}

export class Simulation {
  readonly props: readonly SimProperty[];
  readonly values: HomieValue[];
  readonly payloads: string[];
  private readonly index = new Map<string, number>();
  private readonly ctx: RuleContext;

  constructor(
    readonly model: DeviceModel,
    rng: Rng,
    /** Read at every step: settings change at run time. */
    settings: () => Readonly<Settings>,
  ) {
    const props: SimProperty[] = [];
    for (const node of model.nodes) for (const property of node.properties) props.push({ node, property, key: `${node.id}/${property.id}` });
    this.props = props;
    this.values = props.map((p) => p.property.initial);
    this.payloads = this.values.map(payloadOf);
    props.forEach((p, i) => this.index.set(p.key, i));
    const get = (node: string, property: string) => this.get(node, property);
    // One context object, refilled per property: a step allocates nothing.
    this.ctx = { previous: 0, get, dtMs: 0, rng, settings: {} };
    Object.defineProperty(this.ctx, 'settings', { get: settings, enumerable: true });
  }

  indexOf(node: string, property: string): number {
    return this.index.get(`${node}/${property}`) ?? -1;
  }

  get(node: string, property: string): HomieValue {
    const i = this.indexOf(node, property);
    if (i < 0) throw new Error(`no property ${node}/${property} in model ${this.model.name}`);
    return this.values[i]!;
  }

  /** Replaces a value (already validated by the caller); true when it changed. */
  set(i: number, value: HomieValue): boolean {
    if (this.values[i] === value) return false;
    this.values[i] = value;
    this.payloads[i] = payloadOf(value);
    return true;
  }

  /** Advances simulated time by dtMs; returns how many values changed. */
  step(dtMs: number): number {
    const ctx = this.ctx;
    ctx.dtMs = dtMs;
    let changed = 0;
    for (let i = 0; i < this.props.length; i++) {
      const rule = this.props[i]!.property.rule;
      const prev = this.values[i]!;
      let next: HomieValue = prev;
      switch (rule.kind) {
        case 'hold':
          continue;
        case 'walk': {
          const target = rule.target ?? (rule.min + rule.max) / 2;
          const p = prev as number;
          const raw = p + (target - p) * (rule.pull ?? 0.05) + (ctx.rng() * 2 - 1) * rule.step;
          const f = 10 ** rule.decimals;
          next = Math.round(Math.min(rule.max, Math.max(rule.min, raw)) * f) / f;
          break;
        }
        case 'drain': {
          const p = prev as number;
          if (ctx.rng() < 1 - Math.exp((-rule.perHour * dtMs) / 3_600_000)) next = p <= rule.min ? rule.max : p - 1;
          break;
        }
        case 'derive':
          ctx.previous = prev;
          next = rule.compute(ctx);
          break;
      }
      if (this.set(i, next)) changed++;
    }
    return changed;
  }

  /** Restores values (e.g. from the state file), keeping only those still valid for the model. */
  restore(values: Record<string, unknown>): string[] {
    const skipped: string[] = [];
    for (const [key, raw] of Object.entries(values)) {
      const i = this.index.get(key);
      const check = i === undefined ? null : encodeValue(this.props[i]!.property, raw);
      if (i === undefined || !check || !check.ok) skipped.push(key);
      else this.set(i, check.value);
    }
    return skipped;
  }

  snapshot(): Record<string, HomieValue> {
    const out: Record<string, HomieValue> = {};
    this.props.forEach((p, i) => (out[p.key] = this.values[i]!));
    return out;
  }
}
