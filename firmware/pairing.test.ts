// The device side of pairing, as state: what the button answers, and when there is nothing to answer.
import { DevicePairing } from './pairing';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const req = (pairingId: string, inS = 120) => ({ pairingId, expiresAt: new Date(NOW + inS * 1000).toISOString() });

describe('DevicePairing', () => {
  it('keeps a request for the button, which accepts it once', () => {
    const p = new DevicePairing('button');
    expect(p.onRequest(req('P1'), NOW)).toBeNull();
    expect(p.pending(NOW)).toEqual(req('P1'));
    expect(p.press(NOW + 1_000)).toEqual({ pairingId: 'P1', accept: true });
    expect(p.press(NOW + 2_000)).toBeNull();
    // The same request delivered again (QoS 1) is not asked again.
    expect(p.onRequest(req('P1'), NOW + 3_000)).toBeNull();
    expect(p.pending(NOW + 3_000)).toBeNull();
  });

  it('forgets a request whose deadline passed, and ignores one that arrives expired', () => {
    const p = new DevicePairing('button');
    p.onRequest(req('P1', 10), NOW);
    expect(p.press(NOW + 10_000)).toBeNull();
    expect(p.onRequest(req('P2', -1), NOW)).toBeNull();
    expect(p.refuse(NOW)).toBeNull();
  });

  it('refuses the pending request; a newer request replaces an older one', () => {
    const p = new DevicePairing('button');
    p.onRequest(req('P1'), NOW);
    p.onRequest(req('P2'), NOW);
    expect(p.refuse(NOW)).toEqual({ pairingId: 'P2', accept: false });
  });

  it('answers at once in the accept and refuse modes', () => {
    expect(new DevicePairing('accept').onRequest(req('P1'), NOW)).toEqual({ pairingId: 'P1', accept: true });
    expect(new DevicePairing('refuse').onRequest(req('P1'), NOW)).toEqual({ pairingId: 'P1', accept: false });
  });
});
