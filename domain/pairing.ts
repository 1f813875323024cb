// Pairing (design/product.md, stage 2): an end user proves they hold a device (its pairing code,
// from the label or the QR) and the device confirms by its button. One definition of the
// statuses, the refusals and the limits, shared by the workflow, its activities and the API.

/** What GET /pairings/{id} says (design/contract.md). `pending` until the device answers, the deadline passes or the user cancels. */
export const PAIRING_STATUSES = ['pending', 'paired', 'rejected', 'expired', 'cancelled'] as const;
export type PairingStatus = (typeof PAIRING_STATUSES)[number];
export type FinishedPairingStatus = Exclude<PairingStatus, 'pending'>;

/**
 * Why a pairing request (or a cancel) is refused, with the HTTP status each stands for. The
 * workflow throws these as ApplicationFailure types; temporal/pairing-workflows.ts maps them.
 */
export const PAIRING_REFUSALS = {
  unknown_device: 404,
  wrong_pairing_code: 403,
  too_many_attempts: 429,
  device_blocked: 409,
  device_not_free: 409,
  already_paired: 409,
  pairing_pending: 409,
  pairing_finished: 409,
  not_your_pairing: 403,
  not_owner: 403,
  not_paired: 409,
} as const;
export type PairingRefusal = keyof typeof PAIRING_REFUSALS;

/** Default for PAIRING_TIMEOUT_S (runtime/config.ts): how long the device has to confirm. */
export const DEFAULT_PAIRING_TIMEOUT_S = 120;

/**
 * Wrong codes allowed before further attempts are refused (429), per device and per user. A code
 * has 50 bits: at 5 guesses per 15 minutes a stranger needs ~10^13 years on average.
 */
export const PAIRING_ATTEMPT_LIMITS = {
  perDevice: { max: 5, windowS: 15 * 60 },
  perUser: { max: 5, windowS: 60 * 60 },
} as const;

/**
 * A code as typed: Crockford base32 is case-insensitive and reads O as 0, I and L as 1; people
 * add spaces and hyphens. (Normalised before hashing, so the label's spelling never matters.)
 */
export function normalizePairingCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}
