// How many nodes and properties one device may have stored, and which new property rows it may
// create: one `device_properties` row per (node, property), so without a cap one device
// publishing random topics grows the table (and GET /devices/{id}/sensors) without bound.
//
// A new row is admitted when
// - its node is announced in the device's `$nodes` (when the device has announced one; a Homie 3
//   array `name[]` covers `name` and its elements `name_<i>`), and its property in that node's
//   `$properties` (when announced; an array element's properties are its array's),
// - and the device stays within BRIDGE_MAX_NODES_PER_DEVICE nodes and
//   BRIDGE_MAX_PROPERTIES_PER_NODE properties per node.
// Devices that announce nothing (not valid Homie, but the bench fleet does it) are held by the
// caps alone. Rows that exist are never refused: lowering a cap drops only new ones.
import type { DropReason } from './metrics';

export interface PropertyCaps {
  maxNodes: number;
  maxPropertiesPerNode: number;
  /**
   * Device and node attributes (`$fw/name`, `sensor/$name`, ...) kept in one device's
   * `devices.attributes` (BRIDGE_MAX_ATTRIBUTES_PER_DEVICE): without it, random `$x` topics grow
   * that JSON document, rewritten whole on every change, without bound. Applied in Postgres
   * (device-state.ts), where the stored keys are known.
   */
  maxAttributes: number;
}
export const DEFAULT_PROPERTY_CAPS: PropertyCaps = { maxNodes: 64, maxPropertiesPerNode: 128, maxAttributes: 256 };

export type Refusal = Extract<DropReason, 'too_many_nodes' | 'too_many_properties' | 'unannounced'>;

/** A device's announced lists as stored (null: not announced), raw IDs (`name[]` kept). */
export interface Announced {
  nodes: string[] | null;
  properties: Map<string, string[]>;
}

/** Splits a `$nodes`/`$properties` payload; empty means "no list". */
export function splitList(payload: string | null | undefined): string[] | null {
  return payload ? payload.split(',') : null;
}

const ARRAY_ELEMENT = /^(.*)_\d+$/;

/** The node whose `$properties` describe this node: itself, or an array element's array. */
function describingNode(node: string, nodes: readonly string[] | null): string {
  const m = ARRAY_ELEMENT.exec(node);
  return m && (nodes === null || nodes.includes(`${m[1]}[]`)) ? m[1]! : node;
}

function nodeAnnounced(node: string, nodes: readonly string[]): boolean {
  if (nodes.includes(node) || nodes.includes(`${node}[]`)) return true;
  const m = ARRAY_ELEMENT.exec(node);
  return !!m && nodes.includes(`${m[1]}[]`);
}

/** The property keys a device has stored, by node; `checkedAt`: when they were read from Postgres. */
export class PropertyInventory {
  readonly byNode = new Map<string, Set<string>>();
  size = 0;
  constructor(
    public checkedAt: number,
    /** The lists as last read from Postgres, when an admission read them. */
    public announced: Announced | null = null,
  ) {}

  has(node: string, property: string): boolean {
    return this.byNode.get(node)?.has(property) ?? false;
  }

  add(node: string, property: string): void {
    let s = this.byNode.get(node);
    if (!s) this.byNode.set(node, (s = new Set()));
    if (!s.has(property)) {
      s.add(property);
      this.size++;
    }
  }

  /**
   * Leaves out the rows a batch's own lists remove (its `$nodes`, `<node>/$properties`; a cleared
   * `$properties` removes the node's rows): a device that re-announces at its cap may swap rows.
   */
  retainListed(nodes: string[] | null | undefined, properties: Map<string, string[] | null> | undefined): void {
    if (nodes) for (const n of [...this.byNode.keys()]) if (!nodeAnnounced(n, nodes)) this.dropNode(n);
    if (!properties) return;
    for (const [n, list] of properties) {
      const s = this.byNode.get(n);
      if (!s) continue;
      if (list === null) {
        this.dropNode(n);
        continue;
      }
      for (const p of [...s]) {
        if (list.includes(p)) continue;
        s.delete(p);
        this.size--;
      }
      if (s.size === 0) this.byNode.delete(n);
    }
  }

  private dropNode(n: string): void {
    this.size -= this.byNode.get(n)?.size ?? 0;
    this.byNode.delete(n);
  }

  /**
   * Why a new row (node, property) may not be created, or null (then it is counted in). `announced`
   * is what the device announced, newest first (this batch's lists over the stored ones).
   */
  admit(node: string, property: string, announced: Announced, caps: PropertyCaps): Refusal | null {
    const r = this.refusal(node, property, announced, caps);
    if (r === null) this.add(node, property);
    return r;
  }

  /** As admit, without counting the row in. */
  refusal(node: string, property: string, announced: Announced, caps: PropertyCaps): Refusal | null {
    if (this.has(node, property)) return null;
    if (announced.nodes !== null && !nodeAnnounced(node, announced.nodes)) return 'unannounced';
    const listed = announced.properties.get(describingNode(node, announced.nodes));
    if (listed !== undefined && !listed.includes(property)) return 'unannounced';
    const inNode = this.byNode.get(node);
    if (!inNode && this.byNode.size >= caps.maxNodes) return 'too_many_nodes';
    if (inNode && inNode.size >= caps.maxPropertiesPerNode) return 'too_many_properties';
    return null;
  }
}

/** This batch's lists over the stored ones. */
export function overlay(stored: Announced | null, nodes: string[] | null | undefined, properties: Map<string, string[] | null> | undefined): Announced {
  const out: Announced = { nodes: nodes !== undefined ? nodes : (stored?.nodes ?? null), properties: new Map(stored?.properties ?? []) };
  if (properties) {
    for (const [n, list] of properties) {
      if (list === null) out.properties.delete(n);
      else out.properties.set(n, list);
    }
  }
  return out;
}
