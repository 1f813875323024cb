// The A/B slots as a bootloader keeps them, and the firmware record they live in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FirmwareSlots } from './slots';
import { checkRecord, factoryRecord, FileOtaStore } from './store';

const info = (version: string, healthCheck: 'pass' | 'fail' = 'pass') => ({ version, healthCheck, sha256: 'ab'.repeat(32), size: 10 });

describe('FirmwareSlots', () => {
  it('installs into the inactive slot, boots it on trial, commits; the next update goes to the other slot', async () => {
    const rec = factoryRecord('1.0.0');
    const slots = new FirmwareSlots(rec.slots, { files: null });
    expect([slots.active, slots.running.version, slots.onTrial]).toEqual(['a', '1.0.0', false]);
    expect(slots.boot()).toEqual({ kind: 'normal', slot: 'a' });

    expect(await slots.install(null, info('1.1.0'))).toBe('b');
    expect(slots.running.version).toBe('1.0.0'); // until the reboot
    expect(slots.boot()).toEqual({ kind: 'trial', slot: 'b', previous: 'a' });
    expect([slots.running.version, slots.onTrial]).toEqual(['1.1.0', true]);
    slots.commit();
    expect(slots.boot()).toEqual({ kind: 'normal', slot: 'b' });

    expect(await slots.install(null, info('1.2.0'))).toBe('a');
    expect(slots.slot('a')!.version).toBe('1.2.0');
  });

  it('rolls back a failed trial, and a trial that never committed at the next boot', async () => {
    const rec = factoryRecord('1.0.0');
    const slots = new FirmwareSlots(rec.slots, { files: null });
    await slots.install(null, info('2.0.0', 'fail'));
    slots.boot();
    expect(slots.rollback()).toBe('b');
    expect([slots.active, slots.running.version, slots.slot('b')]).toEqual(['a', '1.0.0', null]);

    await slots.install(null, info('2.0.1'));
    slots.boot(); // on trial ... and then the power goes
    expect(slots.boot()).toEqual({ kind: 'rolled-back', slot: 'a', failed: 'b' });
    expect(slots.running.version).toBe('1.0.0');
  });

  it('moves a downloaded file into the slot, and removes a rolled-back slot file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-slots-'));
    try {
      const store = new FileOtaStore(dir, 'DEV');
      const rec = factoryRecord('1.0.0');
      const slots = new FirmwareSlots(rec.slots, store);
      fs.writeFileSync(store.files.download, 'image');
      await slots.install({ kind: 'file', file: store.files.download }, info('1.1.0'));
      expect(fs.readFileSync(store.files.slot('b'), 'utf8')).toBe('image');
      expect(fs.existsSync(store.files.download)).toBe(false);
      slots.boot();
      slots.rollback();
      expect(fs.existsSync(store.files.slot('b'))).toBe(false);
      store.save(rec);
      expect(store.load()).toEqual(rec);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the firmware record', () => {
  it('reads a corrupt or inconsistent record as none (the factory state), not as a device that cannot boot', () => {
    const good = factoryRecord('1.0.0');
    expect(checkRecord(JSON.parse(JSON.stringify(good)))).toEqual(good);
    const broken = [
      null,
      { ...good, format: 2 },
      { ...good, slots: { ...good.slots, active: 'c' } },
      { ...good, slots: { ...good.slots, slots: { a: null, b: null } } }, // nothing to run
      { ...good, slots: { ...good.slots, pending: 'b' } }, // pending an empty slot
      { ...good, slots: { ...good.slots, trial: true } }, // a trial with nothing to fall back to
      { ...good, slots: { ...good.slots, slots: { a: { version: 'one', healthCheck: 'pass' }, b: null } } },
      { ...good, current: { request: { updateId: 'U' }, state: 'downloading' } },
      { ...good, finished: [{ updateId: 'U', state: 'failed', error: 'nope' }] },
    ];
    for (const b of broken) expect(checkRecord(b)).toBeNull();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-slots-'));
    try {
      fs.writeFileSync(path.join(dir, 'DEV.ota.json'), '{truncated');
      expect(new FileOtaStore(dir, 'DEV').load()).toBeNull();
      expect(new FileOtaStore(dir, 'OTHER').load()).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
