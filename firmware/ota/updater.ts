// The device's side of an over-the-air update (domain/ota.ts, firmware/README.md "OTA"): a request
// on `$rdm/ota/set` becomes downloading → downloaded → verified → installing → rebooting → updated
// (or failed at any step), each step reported on `$rdm/ota`. The Device hands it messages and tells
// it when it boots and when it is connected; it publishes and reboots through the Device (OtaHost).
//
// Rules: one update at a time (another updateId meanwhile is answered `failed` / `busy`); a request
// delivered again (QoS 1, a retained request, the platform retrying) is answered with where that
// update stands, never started twice; a request for the running version is `updated` at once;
// nothing is installed without the platform's signature; a cancel stops an update until it is
// `verified`, and from `installing` on it is too late (logged, nothing changes).
//
// Across reboots and power loss (store.ts): an update interrupted before it installed is resumed at
// the next boot (the download from where it stopped); one that installed boots its slot on trial;
// a trial that never confirmed rolls back. A final report the platform did not acknowledge is sent
// again on the next connection.
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import type { LogLevel } from '../../domain/device-messages';
import { isCancellableOtaState, MAX_IMAGE_HEADER_BYTES, otaReport, parseOtaSet, readImageHeader, type OtaCancelMessage, type OtaError, type OtaReportMessage, type OtaRequestMessage, type OtaState } from '../../domain/ota';
import { topics } from '../../domain/topics';
import type { BackoffOptions } from '../backoff';
import type { Rng } from '../models/rng';
import { download, DownloadError, FileSink, MemorySink, type DownloadSink } from './download';
import { FirmwareSlots } from './slots';
import { factoryRecord, FileOtaStore, MAX_FINISHED, MemoryOtaStore, type CurrentUpdate, type FinishedUpdate, type OtaRecord, type OtaStore, type SlotName } from './store';
import { loadPublicKey, verifyImage, type ImageSource } from './verify';

/** 'full': download, verify, install, reboot for real. 'instant' (fleets): every step at once, no download, no reboot. */
export type OtaMode = 'full' | 'instant';
export const OTA_MODES: readonly OtaMode[] = ['full', 'instant'];

/** What the updater needs of its device. */
export interface OtaHost {
  readonly deviceId: string;
  /** The device's MQTT login: HTTP Basic auth on every download (harmless for a presigned URL). */
  readonly auth: { username: string; password: string };
  /** QoS 1; resolves true once the broker acknowledged it, false when offline or it failed. */
  publish(topic: string, payload: string, retain: boolean): Promise<boolean>;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /** The device's reboot: disconnect, pause, boot again. */
  reboot(): Promise<void>;
}

/** Timings tests shorten, and the slot size. */
export interface OtaTuning {
  /** The largest image the device's slot takes; a larger one is refused `image-too-large`. Default 256 MiB. */
  slotBytes?: number;
  /** Download attempts in a row without a new byte (default 5), and in all (default 50). */
  retries?: number;
  maxAttempts?: number;
  backoff?: Partial<BackoffOptions>;
  idleTimeoutMs?: number;
  /** A trial boot that has not reached the broker after this long rolls back. Default 5 min. */
  trialTimeoutMs?: number;
}

export interface OtaUpdaterOptions {
  mode?: OtaMode;
  /** The platform's public key (SPKI PEM, Ed25519). Without it every request is refused `no-public-key`. */
  publicKeyPem?: string | null;
  /** Firmware record and images here (store.ts); none: in memory. */
  stateDir?: string | null;
  /** The version in slot a of a device that was never updated. */
  factoryVersion: string;
  /** Failure injection: the new firmware's health check fails whatever its image says. */
  failHealthCheck?: boolean;
  tuning?: OtaTuning;
  jitter?: Rng;
  /** Every report, published or not (the Device's `ota` event). */
  onReport?: (r: OtaReportMessage) => void;
}

export interface OtaStats {
  /** Messages on `$rdm/ota/set` (empty payloads, a cleared retained message, not counted). */
  received: number;
  /** Dropped: not a request nor a cancel. */
  malformed: number;
  cancels: number;
  started: number;
  updated: number;
  failed: number;
  /** Answered `failed` without starting: `busy`, `no-public-key`, `image-too-large`. */
  refused: number;
  reports: number;
}

export interface OtaStatus {
  mode: OtaMode;
  slot: SlotName;
  version: string;
  trial: boolean;
  update: { updateId: string; version: string; state: OtaState; progress: number | null } | null;
}

/** Downloads are reported at every tenth of the image. */
const PROGRESS_STEP = 10;
const DEFAULT_TRIAL_TIMEOUT_MS = 5 * 60_000;
/** The platform's default FIRMWARE_MAX_BYTES: whatever it accepts by default, the reference device takes. */
export const DEFAULT_SLOT_BYTES = 256 * 1024 * 1024;

export class OtaUpdater {
  readonly mode: OtaMode;
  readonly stats: OtaStats = { received: 0, malformed: 0, cancels: 0, started: 0, updated: 0, failed: 0, refused: 0, reports: 0 };
  private readonly key: KeyObject | null;
  private readonly store: OtaStore;
  private readonly record: OtaRecord;
  private readonly slots: FirmwareSlots;
  private readonly reportTopic: string;
  /** The pipeline running (or the last one): a resumed one waits for its predecessor to wind down. */
  private run: Promise<void> = Promise.resolve();
  /** Aborts the running pipeline; its reason says why ('cancel' or 'stop'). */
  private abort: AbortController | null = null;
  /** The device is stopping or rebooting: a pipeline ends quietly, to be resumed at the next boot. */
  private halted = false;
  private memory: { updateId: string; sink: MemorySink } | null = null;
  private trialTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: OtaHost,
    private readonly o: OtaUpdaterOptions,
  ) {
    this.mode = o.mode ?? 'full';
    this.key = o.publicKeyPem ? loadPublicKey(o.publicKeyPem) : null;
    this.store = o.stateDir ? new FileOtaStore(o.stateDir, host.deviceId) : new MemoryOtaStore();
    this.record = this.store.load() ?? factoryRecord(o.factoryVersion);
    this.slots = new FirmwareSlots(this.record.slots, this.store);
    this.reportTopic = topics.otaReport(host.deviceId);
  }

  /** The running firmware's version: the active slot's. */
  get runningVersion(): string {
    return this.slots.running.version;
  }

  status(): OtaStatus {
    const c = this.record.current;
    return {
      mode: this.mode,
      slot: this.slots.active,
      version: this.runningVersion,
      trial: this.slots.onTrial,
      update: c ? { updateId: c.request.updateId, version: c.request.version, state: c.state, progress: c.progress ?? null } : null,
    };
  }

  /** The final answer given to an update, when it is among the last ones remembered. */
  finished(updateId: string): Readonly<FinishedUpdate> | undefined {
    return this.record.finished.find((f) => f.updateId === updateId);
  }

  // ---------------------------------------------------------------- the device's life

  /**
   * At every boot, before connecting: the bootloader's choice of slot and the new firmware's health
   * check. 'reboot': the check failed and the old slot is active again; boot once more (the failed
   * firmware never announces itself, so `$fw/version` never shows it).
   */
  onBoot(): 'continue' | 'reboot' {
    this.halted = false;
    const b = this.slots.boot();
    const cur = this.record.current;
    if (b.kind === 'rolled-back') {
      this.host.log('error', 'the new firmware never confirmed its trial boot: rolled back', { failedSlot: b.failed, slot: b.slot, version: this.runningVersion });
      this.save();
      void this.finish('failed', 'health-check-failed'); // sent once connected
      return 'continue';
    }
    if (b.kind === 'trial') {
      const fw = this.slots.running;
      if (fw.healthCheck === 'fail' || this.o.failHealthCheck) {
        this.host.log('error', 'the new firmware failed its health check: rolling back', { slot: b.slot, version: fw.version, previousSlot: b.previous });
        this.slots.rollback();
        this.save();
        void this.finish('failed', 'health-check-failed');
        return 'reboot';
      }
      this.host.log('info', 'booting the new firmware on trial', { slot: b.slot, version: fw.version });
      this.save();
      this.startTrialTimer();
      return 'continue';
    }
    if (cur && (isCancellableOtaState(cur.state) || cur.state === 'installing')) {
      // Interrupted before it was installed (a reboot, a power loss): again, the download from where it stopped.
      this.host.log('info', 'resuming the interrupted update', { updateId: cur.request.updateId, state: cur.state });
      this.startPipeline(cur.request);
    } else if (cur) {
      // `rebooting` without a slot to boot: the install did not survive (a power loss as it was saved).
      this.host.log('error', 'the installed update is missing at boot', { updateId: cur.request.updateId, state: cur.state });
      void this.finish('failed', 'install-failed');
    }
    return 'continue';
  }

  /** Connected and announced: a trial firmware commits; reports the platform may have missed go out again. */
  onConnected(): void {
    for (const f of this.record.finished) if (f.unsent) void this.sendFinal(f);
    const cur = this.record.current;
    if (this.slots.onTrial) {
      this.clearTrialTimer();
      this.slots.commit();
      this.save();
      this.host.log('info', 'the new firmware is healthy: committed', { slot: this.slots.active, version: this.runningVersion });
      // Announced with the connection already; again for a device that announces values only (fleet bench).
      void this.host.publish(topics.firmwareVersion(this.host.deviceId), this.runningVersion, true);
      if (cur) void this.finish('updated');
    } else if (cur) {
      void this.report(this.reportOf(cur));
    }
  }

  /** The device stops, reboots or loses power: downloads are cut (and resumed at the next boot). */
  async shutdown(): Promise<void> {
    this.halted = true;
    this.clearTrialTimer();
    if (this.abort && !this.abort.signal.aborted) this.abort.abort('stop');
    await this.run;
  }

  // ---------------------------------------------------------------- messages

  /** A message on `$rdm/ota/set`. Malformed ones are dropped, counted and logged. */
  onMessage(payload: Buffer): void {
    if (payload.length === 0) return; // the platform cleared a retained request
    this.stats.received++;
    const m = parseOtaSet(payload);
    if (!m) {
      this.stats.malformed++;
      this.host.log('warn', 'ota message rejected: malformed', { payload: payload.toString('utf8').slice(0, 200) });
      return;
    }
    if (m.type === 'cancel') this.onCancel(m.cancel);
    else this.onRequest(m.request);
  }

  private onRequest(req: OtaRequestMessage): void {
    const cur = this.record.current;
    if (cur?.request.updateId === req.updateId) {
      void this.report(this.reportOf(cur)); // delivered again: where it stands
      return;
    }
    const done = this.finished(req.updateId);
    if (done) {
      void this.sendFinal(done);
      return;
    }
    if (!this.key) return this.refuse(req, 'no-public-key');
    if (cur) return this.refuse(req, 'busy');
    if (req.version === this.runningVersion) {
      this.host.log('info', 'update: this version is running already', { updateId: req.updateId, version: req.version });
      void this.answer({ updateId: req.updateId, state: 'updated', unsent: true });
      return;
    }
    if (req.size > (this.o.tuning?.slotBytes ?? DEFAULT_SLOT_BYTES)) return this.refuse(req, 'image-too-large');
    this.discardDownload(); // a stale one of an older update (the file belongs to `current` only)
    this.record.current = { request: req, state: 'downloading', progress: 0 };
    this.save();
    this.stats.started++;
    this.host.log('info', 'update started', { updateId: req.updateId, version: req.version, size: req.size, from: this.runningVersion, mode: this.mode });
    this.startPipeline(req);
  }

  private refuse(req: OtaRequestMessage, error: 'busy' | 'no-public-key' | 'image-too-large'): void {
    this.stats.refused++;
    this.host.log('warn', `update refused: ${error}`, { updateId: req.updateId, version: req.version, size: req.size, ...(error === 'busy' ? { busyWith: this.record.current?.request.updateId } : {}) });
    void this.answer({ updateId: req.updateId, state: 'failed', error, unsent: true });
  }

  private onCancel(c: OtaCancelMessage): void {
    this.stats.cancels++;
    const cur = this.record.current;
    if (cur?.request.updateId !== c.updateId) {
      const done = this.finished(c.updateId);
      this.host.log('info', done ? 'cancel ignored: the update has finished' : 'cancel ignored: no such update', { updateId: c.updateId, ...(done ? { state: done.state } : {}) });
      return;
    }
    if (!isCancellableOtaState(cur.state)) {
      this.host.log('warn', 'cancel too late: the update is installing', { updateId: c.updateId, state: cur.state });
      return;
    }
    this.host.log('info', 'cancelling the update', { updateId: c.updateId, state: cur.state });
    if (this.abort) {
      this.abort.abort('cancel');
    } else {
      void this.finish('failed', 'cancelled'); // not running yet (queued behind a pipeline winding down)
    }
  }

  // ---------------------------------------------------------------- the steps

  private startPipeline(req: OtaRequestMessage): void {
    this.run = this.run
      .then(() => this.pipeline(req))
      .catch((err: unknown) => this.host.log('error', 'update: unexpected failure', { error: (err as Error).message }));
  }

  private async pipeline(req: OtaRequestMessage): Promise<void> {
    const cur = this.record.current;
    // Queued behind a predecessor that was cancelled, stopped, or got as far as installing it meanwhile.
    if (this.halted || cur?.request.updateId !== req.updateId || !(isCancellableOtaState(cur.state) || cur.state === 'installing')) return;
    const abort = new AbortController();
    this.abort = abort;
    const checkpoint = () => {
      if (abort.signal.aborted) throw new Error('aborted');
    };
    try {
      if (this.mode === 'instant') return await this.instant(req);
      const image = await this.fetch(req, abort.signal);
      checkpoint();
      void this.step('downloaded');
      const v = await verifyImage(image, req, this.key!);
      checkpoint();
      if (!v.ok) {
        this.host.log('warn', 'update: image refused', { updateId: req.updateId, error: v.error, detail: v.detail });
        return await this.finish('failed', v.error);
      }
      void this.step('verified');
      this.abort = null; // from here on a cancel is too late
      void this.step('installing');
      const header = readImageHeader(await headOf(image));
      if (!header || header.version !== req.version) {
        this.host.log('warn', 'update: not a firmware image of the announced version', { updateId: req.updateId, version: req.version, header });
        return await this.finish('failed', 'image-invalid');
      }
      try {
        const slot = await this.slots.install(image, { version: header.version, healthCheck: header.healthCheck, sha256: req.sha256, size: req.size });
        this.host.log('info', 'update installed', { updateId: req.updateId, slot, version: header.version });
      } catch (err) {
        this.host.log('error', 'update: writing the slot failed', { updateId: req.updateId, error: (err as Error).message });
        return await this.finish('failed', 'install-failed');
      }
      this.releaseMemory();
      // Acknowledged before the device disconnects, so the platform knows why it goes away.
      await this.step('rebooting');
      if (!this.halted) void this.host.reboot();
    } catch (err) {
      const why: unknown = abort.signal.aborted ? abort.signal.reason : null;
      if (why === 'cancel') {
        this.host.log('info', 'update cancelled', { updateId: req.updateId });
        return await this.finish('failed', 'cancelled');
      }
      if (why === 'stop' || this.halted) return; // stopping or rebooting: resumed at the next boot
      const code: OtaError = err instanceof DownloadError ? err.code : this.record.current?.state === 'downloading' ? 'download-failed' : 'install-failed';
      this.host.log('warn', 'update failed', { updateId: req.updateId, error: code, detail: (err as Error).message });
      return await this.finish('failed', code);
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  /** `downloading`, with progress at every tenth; the image in the state directory or in memory. */
  private async fetch(req: OtaRequestMessage, signal: AbortSignal): Promise<ImageSource> {
    const files = this.store.files;
    let sink: DownloadSink;
    if (files) sink = new FileSink(files.download);
    else {
      if (this.memory?.updateId !== req.updateId) this.memory = { updateId: req.updateId, sink: new MemorySink(req.size) };
      sink = this.memory.sink;
    }
    let shown = -1;
    const progress = (received: number) => {
      const pct = Math.floor((received * 100) / req.size);
      const step = pct - (pct % PROGRESS_STEP);
      if (step <= shown) return;
      shown = step;
      void this.step('downloading', step);
    };
    progress(sink.length); // 0, or where a resumed download stands
    try {
      const t = this.o.tuning ?? {};
      const r = await download({
        url: req.url,
        size: req.size,
        sink,
        auth: this.host.auth,
        onProgress: progress,
        signal,
        jitter: this.o.jitter,
        retries: t.retries,
        maxAttempts: t.maxAttempts,
        backoff: t.backoff,
        idleTimeoutMs: t.idleTimeoutMs,
      });
      this.host.log('info', 'update downloaded', { updateId: req.updateId, attempts: r.attempts, resumedAt: r.offsets.filter((n) => n > 0) });
    } finally {
      if (sink instanceof FileSink) await sink.close();
    }
    return files ? { kind: 'file', file: files.download } : { kind: 'memory', bytes: (sink as MemorySink).bytes() };
  }

  /** Every step at once: nothing downloaded, the slot switched without leaving the network. */
  private async instant(req: OtaRequestMessage): Promise<void> {
    void this.step('downloading', 100);
    void this.step('downloaded');
    void this.step('verified');
    void this.step('installing');
    this.abort = null;
    await this.slots.install(null, { version: req.version, healthCheck: this.o.failHealthCheck ? 'fail' : 'pass', sha256: req.sha256, size: req.size });
    void this.step('rebooting');
    this.slots.boot(); // the instant reboot: the new slot on trial
    if (this.o.failHealthCheck) {
      this.slots.rollback();
      this.save();
      this.host.log('error', 'the new firmware failed its health check: rolled back', { updateId: req.updateId, version: req.version });
      return this.finish('failed', 'health-check-failed');
    }
    this.slots.commit();
    this.save();
    await this.host.publish(topics.firmwareVersion(this.host.deviceId), this.runningVersion, true);
    return this.finish('updated');
  }

  private step(state: OtaState, progress?: number): Promise<boolean> {
    const cur = this.record.current;
    if (!cur) return Promise.resolve(false);
    cur.state = state;
    if (progress === undefined) delete cur.progress;
    else cur.progress = progress;
    this.save();
    return this.report(this.reportOf(cur));
  }

  private async finish(state: 'updated' | 'failed', error?: OtaError): Promise<void> {
    const cur = this.record.current;
    if (!cur) return;
    this.record.current = null;
    this.discardDownload();
    if (state === 'updated') this.stats.updated++;
    else this.stats.failed++;
    this.host.log(state === 'updated' ? 'info' : 'warn', state === 'updated' ? 'update done' : 'update failed', {
      updateId: cur.request.updateId,
      version: cur.request.version,
      running: this.runningVersion,
      ...(error ? { error } : {}),
    });
    await this.answer({ updateId: cur.request.updateId, state, ...(error ? { error } : {}), unsent: true });
  }

  /** Remembers a final answer (the dedupe memory) and sends it. */
  private async answer(f: FinishedUpdate): Promise<void> {
    this.record.finished.push(f);
    if (this.record.finished.length > MAX_FINISHED) this.record.finished.splice(0, this.record.finished.length - MAX_FINISHED);
    this.save();
    await this.sendFinal(f);
  }

  private async sendFinal(f: FinishedUpdate): Promise<void> {
    const acked = await this.report(otaReport(f.updateId, f.state, { error: f.error }));
    if (acked && f.unsent) {
      delete f.unsent;
      this.save();
    }
  }

  private reportOf(cur: CurrentUpdate): OtaReportMessage {
    return otaReport(cur.request.updateId, cur.state, { progress: cur.progress });
  }

  private report(r: OtaReportMessage): Promise<boolean> {
    this.stats.reports++;
    this.o.onReport?.(r);
    return this.host.publish(this.reportTopic, JSON.stringify(r), false);
  }

  // ---------------------------------------------------------------- housekeeping

  private startTrialTimer(): void {
    this.clearTrialTimer();
    this.trialTimer = setTimeout(() => {
      this.trialTimer = null;
      if (!this.slots.onTrial) return;
      this.host.log('error', 'the new firmware did not reach the platform in time: rolling back', { version: this.runningVersion });
      this.slots.rollback();
      this.save();
      void this.finish('failed', 'health-check-failed');
      void this.host.reboot();
    }, this.o.tuning?.trialTimeoutMs ?? DEFAULT_TRIAL_TIMEOUT_MS);
    this.trialTimer.unref();
  }

  private clearTrialTimer(): void {
    if (this.trialTimer) clearTimeout(this.trialTimer);
    this.trialTimer = null;
  }

  private releaseMemory(): void {
    this.memory?.sink.release();
    this.memory = null;
  }

  private discardDownload(): void {
    this.releaseMemory();
    const files = this.store.files;
    if (files) fs.rmSync(files.download, { force: true });
  }

  private save(): void {
    try {
      this.store.save(this.record);
    } catch (err) {
      this.host.log('error', 'cannot save the firmware record', { error: (err as Error).message });
    }
  }
}

/** The first bytes of an image, where its header is. */
async function headOf(image: ImageSource): Promise<Buffer> {
  if (image.kind === 'memory') return image.bytes.subarray(0, MAX_IMAGE_HEADER_BYTES);
  const fh = await fs.promises.open(image.file, 'r');
  try {
    const buf = Buffer.alloc(MAX_IMAGE_HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
