// What a device remembers of its firmware across reboots and power loss: the A/B slot table, the
// update in flight and the last updates it finished. Next to the state store's file, written the
// same way (temporary file, then rename: a crash mid-write leaves the previous one whole), in its
// own file so a firmware update never rewrites the values and settings (firmware/state-store.ts).
//
//   <state-dir>/<ID>.ota.json        this record
//   <state-dir>/<ID>.ota-download    an image being downloaded (kept across restarts: resumed)
//   <state-dir>/<ID>.slot-a|b        the slots' images
//
// Without a state directory everything lives in memory: it survives the device's reboots (the
// process goes on) but not the process.
import path from 'node:path';
import { readJsonFile, writeJsonFile } from '../json-file';
import { isOtaError, isOtaState, parseOtaRequest, type OtaError, type OtaRequestMessage, type OtaState } from '../../domain/ota';
import { isSemVer } from '../../domain/semver';

export type SlotName = 'a' | 'b';

export interface SlotRecord {
  version: string;
  /** What the image's header says its health check does (domain/ota.ts test-image format). */
  healthCheck: 'pass' | 'fail';
  /** null for the factory firmware (it came with the device, not as an image). */
  sha256: string | null;
  size: number | null;
}

export interface SlotTable {
  /** The slot the device boots. */
  active: SlotName;
  /** The active slot was booted on trial and not committed yet. */
  trial: boolean;
  /** Installed, to boot on trial at the next boot. */
  pending: SlotName | null;
  slots: Record<SlotName, SlotRecord | null>;
}

/** The update in flight: the request (to resume it) and the last step reported. */
export interface CurrentUpdate {
  request: OtaRequestMessage;
  state: OtaState;
  progress?: number;
}

export interface FinishedUpdate {
  updateId: string;
  state: 'updated' | 'failed';
  error?: OtaError;
  /** The final report is not acknowledged yet: it is sent again on the next connection. */
  unsent?: boolean;
}

export interface OtaRecord {
  format: 1;
  slots: SlotTable;
  current: CurrentUpdate | null;
  /** Newest last; a bounded list, the dedupe memory for re-delivered requests. */
  finished: FinishedUpdate[];
}

export const MAX_FINISHED = 32;

export interface OtaStore {
  /** null: nothing saved yet (first boot) or unreadable (then the factory state). */
  load(): OtaRecord | null;
  save(record: OtaRecord): void;
  /** Where downloads and slot images go; null keeps images in memory. */
  readonly files: { download: string; slot(name: SlotName): string } | null;
}

export function factoryRecord(version: string): OtaRecord {
  return {
    format: 1,
    slots: { active: 'a', trial: false, pending: null, slots: { a: { version, healthCheck: 'pass', sha256: null, size: null }, b: null } },
    current: null,
    finished: [],
  };
}

const isSlot = (v: unknown): v is SlotName => v === 'a' || v === 'b';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function validSlot(v: unknown): boolean {
  return v === null || (isObject(v) && typeof v.version === 'string' && isSemVer(v.version) && (v.healthCheck === 'pass' || v.healthCheck === 'fail'));
}

/** A saved record that still makes sense, or null (a corrupt file is a factory reset, not a device that cannot boot). */
export function checkRecord(v: unknown): OtaRecord | null {
  if (!isObject(v) || v.format !== 1 || !isObject(v.slots) || !Array.isArray(v.finished)) return null;
  const t = v.slots;
  if (!isSlot(t.active) || typeof t.trial !== 'boolean' || !(t.pending === null || isSlot(t.pending)) || !isObject(t.slots)) return null;
  if (!validSlot(t.slots.a) || !validSlot(t.slots.b) || t.slots[t.active] === null) return null;
  if (t.pending !== null && t.slots[t.pending] === null) return null;
  if (t.trial && t.slots[t.active === 'a' ? 'b' : 'a'] === null) return null; // a trial needs an old slot to fall back to
  if (v.current !== null) {
    const c = v.current;
    if (!isObject(c) || !isOtaState(c.state) || !parseOtaRequest(JSON.stringify(c.request))) return null;
  }
  if (!v.finished.every((f) => isObject(f) && typeof f.updateId === 'string' && (f.state === 'updated' || f.state === 'failed') && (f.error === undefined || isOtaError(f.error)))) return null;
  return v as unknown as OtaRecord;
}

export class FileOtaStore implements OtaStore {
  readonly file: string;
  readonly files: { download: string; slot(name: SlotName): string };

  constructor(dir: string, deviceId: string) {
    this.file = path.join(dir, `${deviceId}.ota.json`);
    this.files = { download: path.join(dir, `${deviceId}.ota-download`), slot: (name) => path.join(dir, `${deviceId}.slot-${name}`) };
  }

  load(): OtaRecord | null {
    const v = readJsonFile(this.file);
    if (v === null) return null;
    try {
      return checkRecord(v);
    } catch {
      return null;
    }
  }

  save(record: OtaRecord): void {
    writeJsonFile(this.file, record);
  }
}

export class MemoryOtaStore implements OtaStore {
  readonly files = null;
  private saved: string | null = null;

  load(): OtaRecord | null {
    return this.saved === null ? null : (JSON.parse(this.saved) as OtaRecord);
  }

  save(record: OtaRecord): void {
    this.saved = JSON.stringify(record);
  }
}
