// The device lifecycle (design/product.md): the one list of statuses and the one table of
// legal transitions, with who may perform each. Pure and deterministic: workflows import it.

export const DEVICE_STATUSES = ['new', 'manufacturing', 'manufactured', 'free', 'pairing', 'paired'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** Who asks for a transition. `system` is the platform itself (pairing handshake, first connection). */
export const ACTORS = ['admin', 'manufacturer', 'system'] as const;
export type Actor = (typeof ACTORS)[number];

interface TransitionRule {
  from: DeviceStatus;
  to: DeviceStatus;
  by: readonly Actor[];
  why: string;
}

export const TRANSITIONS: readonly TransitionRule[] = [
  { from: 'new', to: 'manufacturing', by: ['manufacturer', 'admin'], why: 'production started' },
  { from: 'manufacturing', to: 'manufactured', by: ['manufacturer', 'admin'], why: 'flashed with its ID and credentials' },
  { from: 'manufacturing', to: 'new', by: ['admin'], why: 'production cancelled' },
  { from: 'manufactured', to: 'manufacturing', by: ['admin'], why: 'sent back for rework' },
  { from: 'manufactured', to: 'free', by: ['admin', 'system'], why: 'released to end users, or first authenticated connection' },
  { from: 'free', to: 'pairing', by: ['system'], why: 'an end user asked to pair' },
  { from: 'pairing', to: 'paired', by: ['system'], why: 'the device confirmed the handshake' },
  { from: 'pairing', to: 'free', by: ['system', 'admin'], why: 'pairing timed out, was rejected or was cancelled' },
  { from: 'paired', to: 'free', by: ['system', 'admin'], why: 'unpaired or reset' },
];

export type TransitionCheck =
  | { ok: true; changed: boolean }
  | { ok: false; code: 'illegal_transition' | 'forbidden_transition' | 'device_blocked'; message: string };

export interface LifecycleFacts {
  status: DeviceStatus;
  blocked: boolean;
}

/**
 * Decides whether `actor` may move a device from its current status to `to`.
 * Asking for the status the device already has is accepted and changes nothing, so that
 * retried requests and re-run bulk operations are harmless.
 */
export function checkTransition(facts: LifecycleFacts, to: DeviceStatus, actor: Actor): TransitionCheck {
  if (facts.status === to) return { ok: true, changed: false };
  const rule = TRANSITIONS.find((t) => t.from === facts.status && t.to === to);
  if (!rule) {
    const legal = TRANSITIONS.filter((t) => t.from === facts.status).map((t) => t.to);
    return {
      ok: false,
      code: 'illegal_transition',
      message: `cannot go from '${facts.status}' to '${to}'; from '${facts.status}' a device may go to: ${legal.join(', ') || 'nothing'}`,
    };
  }
  if (!rule.by.includes(actor)) {
    return { ok: false, code: 'forbidden_transition', message: `a ${actor} may not move a device from '${rule.from}' to '${rule.to}'` };
  }
  if (facts.blocked && to === 'pairing') {
    return { ok: false, code: 'device_blocked', message: 'the device is blocked: its credentials were revoked' };
  }
  return { ok: true, changed: true };
}

/** Statuses a manufacturer may set: the provisioning stage only. */
export const MANUFACTURER_STATUSES: readonly DeviceStatus[] = ['manufacturing', 'manufactured'];
