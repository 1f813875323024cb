// A/B firmware slots, the way a bootloader keeps them: the device runs the active slot; an update
// is written into the other one, which the next boot starts on trial; the new firmware commits
// itself once it is healthy, and a trial that fails (or never confirms) falls back to the old slot.
// The running version is always the active slot's, never a constant.
//
//   install(image) ─► pending = inactive ─► boot() ─► active = it, trial ─► commit()   (good)
//                                                               └────────► rollback() (old slot active again)
//
// Pure bookkeeping on the record (store.ts) plus the image bytes: moved into the slot's file when the
// device has a state directory; with none (the fleet, in memory) a slot keeps only what the image's
// header said, so thousands of simulated devices do not each hold a copy of the image.
import fs from 'node:fs';
import type { ImageSource } from './verify';
import type { OtaStore, SlotName, SlotRecord, SlotTable } from './store';

export const otherSlot = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

export type BootOutcome =
  /** The active slot, as before. */
  | { kind: 'normal'; slot: SlotName }
  /** The newly installed slot, on trial: it must pass its health check and commit. */
  | { kind: 'trial'; slot: SlotName; previous: SlotName }
  /** The last boot was a trial that never committed (power lost, crashed): back to the old slot. */
  | { kind: 'rolled-back'; slot: SlotName; failed: SlotName };

export class FirmwareSlots {
  constructor(
    private readonly table: SlotTable,
    private readonly store: Pick<OtaStore, 'files'>,
  ) {}

  get active(): SlotName {
    return this.table.active;
  }

  get inactive(): SlotName {
    return otherSlot(this.table.active);
  }

  /** The firmware that runs: the active slot's. */
  get running(): SlotRecord {
    return this.table.slots[this.table.active]!;
  }

  get onTrial(): boolean {
    return this.table.trial;
  }

  slot(name: SlotName): SlotRecord | null {
    return this.table.slots[name];
  }

  /**
   * Writes the image into the inactive slot (a file: renamed into place, so a half-written slot
   * never has the name) and marks it for the next boot. The caller persists the record.
   */
  async install(image: ImageSource | null, info: SlotRecord): Promise<SlotName> {
    const target = this.inactive;
    const files = this.store.files;
    this.table.pending = null;
    this.table.slots[target] = null; // the old contents are gone from here on
    if (files && image) {
      const dest = files.slot(target);
      if (image.kind === 'file') await fs.promises.rename(image.file, dest);
      else {
        await fs.promises.writeFile(`${dest}.tmp`, image.bytes);
        await fs.promises.rename(`${dest}.tmp`, dest);
      }
    }
    this.table.slots[target] = { ...info };
    this.table.pending = target;
    return target;
  }

  /** The bootloader's choice, at every boot. The caller persists the record when it changed (kind ≠ normal). */
  boot(): BootOutcome {
    const t = this.table;
    if (t.trial) {
      // The trial boot before this one never committed: its firmware did not prove itself.
      const failed = t.active;
      this.rollback();
      return { kind: 'rolled-back', slot: t.active, failed };
    }
    if (t.pending !== null && t.slots[t.pending]) {
      const previous = t.active;
      t.active = t.pending;
      t.pending = null;
      t.trial = true;
      return { kind: 'trial', slot: t.active, previous };
    }
    t.pending = null;
    return { kind: 'normal', slot: t.active };
  }

  /** The trial firmware is healthy: it stays. */
  commit(): void {
    this.table.trial = false;
  }

  /** The trial firmware failed: the other slot is active again and the failed one is emptied. */
  rollback(): SlotName {
    const failed = this.table.active;
    this.table.active = otherSlot(failed);
    this.table.trial = false;
    this.table.pending = null;
    this.table.slots[failed] = null;
    const files = this.store.files;
    if (files) fs.rmSync(files.slot(failed), { force: true });
    return failed;
  }
}
