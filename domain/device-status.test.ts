import { ACTORS, DEVICE_STATUSES, TRANSITIONS, checkTransition, type Actor, type DeviceStatus } from './device-status';

const facts = (status: DeviceStatus, blocked = false) => ({ status, blocked });

describe('device lifecycle rules', () => {
  it('walks the happy path of design/product.md', () => {
    const path: [DeviceStatus, Actor][] = [
      ['manufacturing', 'manufacturer'],
      ['manufactured', 'manufacturer'],
      ['free', 'admin'],
      ['pairing', 'system'],
      ['paired', 'system'],
      ['free', 'system'],
    ];
    let status: DeviceStatus = 'new';
    for (const [to, actor] of path) {
      expect(checkTransition(facts(status), to, actor)).toEqual({ ok: true, changed: true });
      status = to;
    }
  });

  it.each([
    ['new', 'paired'],
    ['new', 'free'],
    ['new', 'manufactured'],
    ['manufacturing', 'paired'],
    ['free', 'paired'],
    ['paired', 'pairing'],
    ['paired', 'new'],
  ] as [DeviceStatus, DeviceStatus][])('refuses %s -> %s for everyone', (from, to) => {
    for (const actor of ACTORS) {
      const r = checkTransition(facts(from), to, actor);
      expect(r).toMatchObject({ ok: false, code: 'illegal_transition' });
    }
  });

  it('names the legal next statuses in the refusal', () => {
    const r = checkTransition(facts('new'), 'paired', 'admin');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toBe("cannot go from 'new' to 'paired'; from 'new' a device may go to: manufacturing");
  });

  it('limits manufacturers to the provisioning stage', () => {
    expect(checkTransition(facts('manufactured'), 'free', 'manufacturer')).toMatchObject({ ok: false, code: 'forbidden_transition' });
    expect(checkTransition(facts('manufacturing'), 'new', 'manufacturer')).toMatchObject({ ok: false, code: 'forbidden_transition' });
    expect(checkTransition(facts('paired'), 'free', 'manufacturer')).toMatchObject({ ok: false, code: 'forbidden_transition' });
  });

  it('leaves the pairing handshake to the platform', () => {
    expect(checkTransition(facts('free'), 'pairing', 'admin')).toMatchObject({ ok: false, code: 'forbidden_transition' });
    expect(checkTransition(facts('pairing'), 'paired', 'admin')).toMatchObject({ ok: false, code: 'forbidden_transition' });
    expect(checkTransition(facts('pairing'), 'free', 'admin')).toEqual({ ok: true, changed: true });
  });

  it('refuses to pair a blocked device', () => {
    expect(checkTransition(facts('free', true), 'pairing', 'system')).toMatchObject({ ok: false, code: 'device_blocked' });
  });

  it('accepts the current status as a no-op, for any actor', () => {
    for (const s of DEVICE_STATUSES) for (const a of ACTORS) expect(checkTransition(facts(s), s, a)).toEqual({ ok: true, changed: false });
  });

  it('has every status reachable from new and able to leave, except by design', () => {
    const reachable = new Set<DeviceStatus>(['new']);
    for (let grew = true; grew; ) {
      grew = false;
      for (const t of TRANSITIONS) {
        if (reachable.has(t.from) && !reachable.has(t.to)) {
          reachable.add(t.to);
          grew = true;
        }
      }
    }
    expect([...reachable].sort()).toEqual([...DEVICE_STATUSES].sort());
    for (const s of DEVICE_STATUSES) expect(TRANSITIONS.some((t) => t.from === s)).toBe(true);
  });
});
