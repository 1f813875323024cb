// The device side of pairing (design/contract.md "MQTT: pairing"): a request from the platform
// waits for the device's button; pressed before the deadline, the device accepts. The owner the
// platform tells it (retained `$rdm/owner`) is what the device shows. Pure state: the Device
// publishes the answers this returns.
import type { PairingRequestMessage, PairingResponseMessage } from '../domain/device-messages';

/** What the device does with a request: wait for its button (a person), or answer at once (tests, benches). */
export type PairingMode = 'button' | 'accept' | 'refuse';
export const PAIRING_MODES: readonly PairingMode[] = ['button', 'accept', 'refuse'];

export class DevicePairing {
  private pendingRequest: PairingRequestMessage | null = null;
  private readonly answered = new Set<string>();
  owner: string | null = null;

  constructor(public mode: PairingMode = 'button') {}

  /** The request waiting for the button, while its deadline has not passed. */
  pending(nowMs: number): PairingRequestMessage | null {
    const p = this.pendingRequest;
    if (p && Date.parse(p.expiresAt) <= nowMs) this.pendingRequest = null;
    return this.pendingRequest;
  }

  /** A request arrived: the answer to send now (modes accept/refuse), or null (wait for the button, or nothing to do). */
  onRequest(req: PairingRequestMessage, nowMs: number): PairingResponseMessage | null {
    // QoS 1 may deliver twice; an expired request is not for anyone any more.
    if (this.answered.has(req.pairingId) || Date.parse(req.expiresAt) <= nowMs) return null;
    if (this.mode === 'button') {
      this.pendingRequest = req;
      return null;
    }
    return this.answer(req.pairingId, this.mode === 'accept');
  }

  /** The button: accepts the pending request (null when there is none). */
  press(nowMs: number): PairingResponseMessage | null {
    const p = this.pending(nowMs);
    return p ? this.answer(p.pairingId, true) : null;
  }

  /** Refuses the pending request (the local page's "refuse"). */
  refuse(nowMs: number): PairingResponseMessage | null {
    const p = this.pending(nowMs);
    return p ? this.answer(p.pairingId, false) : null;
  }

  private answer(pairingId: string, accept: boolean): PairingResponseMessage {
    this.pendingRequest = null;
    this.answered.add(pairingId);
    if (this.answered.size > 64) this.answered.delete(this.answered.values().next().value as string);
    return { pairingId, accept };
  }
}
