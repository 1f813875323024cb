// Device shares (an owner lends a device to another person as `serviceman` or `viewer`) and the
// per-property declaration of who, by their relation to a device, may see and set what.
import type { ShareRole } from './roles';

/** Live shares one device may have at a time (an owner lends to a few people, not a crowd). */
export const MAX_LIVE_SHARES_PER_DEVICE = 50;
/** The farthest a share's end may lie ahead: beyond that, a share without an end says what is meant. */
export const MAX_SHARE_DAYS = 3_660;

/** Why a share ended: the owner or an admin revoked it, its person left it (gave the device back), its time ran out, the device was unpaired. */
export const SHARE_END_REASONS = ['revoked', 'left', 'expired', 'unpaired'] as const;
export type ShareEndReason = (typeof SHARE_END_REASONS)[number];

export interface Share {
  id: string;
  deviceId: string;
  userId: string;
  role: ShareRole;
  expiresAt: string | null;
  createdBy: string;
  createdAt: string;
  endedAt: string | null;
  endReason: ShareEndReason | null;
}

// ---- Who sees and sets which property ----

/**
 * A caller's relation to one device, for property visibility. Company staff (and platform admins)
 * are `staff`: their company role already says what they may do, and they see every property;
 * the declaration narrows what the device's end users see: its owner and those it is shared with.
 */
export const AUDIENCES = ['owner', 'serviceman', 'viewer'] as const;
export type Audience = (typeof AUDIENCES)[number];
export type Relation = 'staff' | Audience;

export interface PropertyAccess {
  /** Who sees the property: its current value, its history, its description. */
  visibleTo: Audience[];
  /** Who may set it (a settable sensor, a setting); never wider than visibleTo. */
  settableBy: Audience[];
}

/**
 * Without a declaration (the product's design: "an end user sees controls, a serviceman full
 * telemetry" is something the maker declares per model): everyone related sees, a viewer sets nothing.
 */
export const DEFAULT_PROPERTY_ACCESS: PropertyAccess = { visibleTo: ['owner', 'serviceman', 'viewer'], settableBy: ['owner', 'serviceman'] };

/** The node a declaration uses for a device's settings (GET/PATCH /config): Homie node IDs cannot start with `$`. */
export const SETTINGS_NODE = '$settings';
/** Matches any node or property in a declaration. */
export const ANY = '*';

export interface PropertyAccessRule extends PropertyAccess {
  /** A model of the company's devices, or ANY: every model (a model's own rules come first). */
  model: string;
  node: string;
  property: string;
}

/** Largest number of rules one model may declare. */
export const MAX_RULES_PER_MODEL = 1_000;

/**
 * The declaration that applies to one property of a device of `model`: the most specific rule (the
 * model's own before the company's for any model; then node and property, node with any property,
 * any node with the property, any and any), else the default.
 */
export function resolveAccess(rules: readonly PropertyAccessRule[], model: string | null, node: string, property: string): PropertyAccess {
  let best: PropertyAccessRule | undefined;
  let bestRank = -1;
  for (const r of rules) {
    if ((r.model !== model && r.model !== ANY) || (r.node !== node && r.node !== ANY) || (r.property !== property && r.property !== ANY)) continue;
    // A wildcard node never matches settings: sensors and settings are declared apart.
    if (r.node === ANY && node === SETTINGS_NODE) continue;
    const rank = (r.model === model ? 4 : 0) + (r.node === node ? 2 : 0) + (r.property === property ? 1 : 0);
    if (rank > bestRank) [best, bestRank] = [r, rank];
  }
  return best ? { visibleTo: best.visibleTo, settableBy: best.settableBy } : DEFAULT_PROPERTY_ACCESS;
}

/** Whether a caller with this relation sees / may set a property with this access. */
export const sees = (relation: Relation, a: PropertyAccess) => relation === 'staff' || a.visibleTo.includes(relation);
export const sets = (relation: Relation, a: PropertyAccess) => relation === 'staff' || (a.visibleTo.includes(relation) && a.settableBy.includes(relation));
