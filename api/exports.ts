// The manufacturer's downloads (devices.csv, bundle.zip): the rows of a batch with their derived
// credentials, and the limits that keep one slow or hostile client from tying up the server.
import { deviceMqttUsername } from '../domain/broker-identity';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import type { CredentialDeriver } from '../domain/credentials';
import { UnavailableError } from '../domain/errors';
import type { Batch } from '../domain/model';
import { qrPayload } from '../domain/qr-payload';
import type { Db } from '../db/knex';
import { streamBatchDevices } from '../db/repositories/devices';
import type { DeviceExportRow } from '../files/device-export';
import type { Logger } from '../runtime/logger';

export async function* batchExportRows(db: Db, credentials: CredentialDeriver, batch: Batch, mqttUrl: string | null): AsyncGenerator<DeviceExportRow> {
  for await (const d of streamBatchDevices(db, batch.id)) {
    const c = credentials.device(d.id, d.secret_generation);
    yield {
      deviceId: d.id,
      batchId: batch.id,
      batchName: batch.name,
      status: d.status,
      secret: c.secret,
      pairingCode: c.pairingCode,
      qrPayload: qrPayload(d.id, c.pairingCode),
      info: batch.info,
      model: d.model,
      color: batch.color,
      createdAt: d.created_at,
      mqttUrl,
      mqttUsername: deviceMqttUsername(d.id),
    };
  }
}

export interface ExportLimits {
  /** Downloads streamed at once (EXPORT_CONCURRENCY); one more is answered 503 with Retry-After. */
  concurrency: number;
  /** A download whose client has not taken any data for this long is cut off (EXPORT_STALL_TIMEOUT_S). */
  stallTimeoutMs: number;
}

export const DEFAULT_EXPORT_LIMITS: ExportLimits = { concurrency: 4, stallTimeoutMs: 30_000 };

/** What a refused download is told to wait: an export of a large batch takes seconds, not minutes. */
const RETRY_AFTER_S = 5;

/**
 * Sends downloads within the limits. Rows are read page by page (no pooled connection waits on a
 * client), so what a download costs while it runs is CPU and memory; those are bounded by the
 * number running at once, and a client that stops reading gives its place up after the stall timeout.
 */
export class ExportGate {
  private running = 0;

  constructor(
    private readonly limits: ExportLimits,
    private readonly log: Logger,
  ) {}

  async send(res: Response, file: { type: string; name: string }, open: () => Readable): Promise<void> {
    if (this.running >= this.limits.concurrency) {
      res.setHeader('Retry-After', String(RETRY_AFTER_S));
      throw new UnavailableError(`${this.running} downloads are running, the most this server streams at once; retry in ${RETRY_AFTER_S} s`);
    }
    this.running++;
    const guard = cutOffWhenStalled(res, this.limits.stallTimeoutMs);
    try {
      res.status(200).type(file.type).attachment(file.name).setHeader('Cache-Control', 'no-store');
      await pipeline(open(), res);
    } catch (err) {
      // The guard destroyed the response on purpose: that is the outcome, not a server error.
      if (!guard.stalled()) throw err;
      this.log.warn({ file: file.name, stallTimeoutMs: this.limits.stallTimeoutMs }, 'download cut off: the client stopped reading');
    } finally {
      guard.stop();
      this.running--;
    }
  }
}

/**
 * Destroys the response (and its socket) once it has waited `ms` for the client to drain what was
 * written. Only a full socket counts: a slow but reading client drains and keeps going.
 */
export function cutOffWhenStalled(res: ServerResponse, ms: number): { stop(): void; stalled(): boolean } {
  let waitingSince: number | null = null;
  let cut = false;
  const onDrain = () => (waitingSince = null);
  res.on('drain', onDrain);
  const timer = setInterval(() => {
    if (!res.writableNeedDrain) return void (waitingSince = null);
    const now = Date.now();
    waitingSince ??= now;
    if (now - waitingSince >= ms) {
      cut = true;
      res.destroy(new Error(`the client took nothing for ${ms} ms`));
    }
  }, Math.max(20, Math.min(1_000, ms / 4)));
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      res.off('drain', onDrain);
    },
    stalled: () => cut,
  };
}
