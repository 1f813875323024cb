// Activities of a device's firmware update, run by its lifecycle workflow (workflows/device-lifecycle.ts).
// Each is idempotent: recording the same step again changes nothing, publishing the request again
// gives the device the same update ID (it never starts an update twice), clearing twice is clearing.
import type { Db } from '../db/knex';
import type { CredentialDeriver } from '../domain/credentials';
import { ValidationError } from '../domain/errors';
import { topics } from '../domain/topics';
import type { OtaRequestMessage } from '../domain/ota';
import { recordUpdateProgress, type UpdateProgress } from '../db/repositories/device-updates';
import { downloadUrl } from '../ota/download-url';
import type { DevicePublisher } from '../runtime/device-publisher';
import { DEFAULT_DOWNLOAD_URL_TTL_S } from '../domain/firmware';

export interface FirmwareUpdateDeps {
  db: Db;
  credentials: CredentialDeriver;
  publisher: DevicePublisher;
  /** Where devices reach the API's image route (PUBLIC_URL); without it no update can be sent. */
  firmwareBaseUrl?: string;
  /** How long a download link works (FIRMWARE_URL_TTL_S). */
  downloadUrlTtlS?: number;
}

export function firmwareUpdateActivities({ db, credentials, publisher, firmwareBaseUrl, downloadUrlTtlS = DEFAULT_DOWNLOAD_URL_TTL_S }: FirmwareUpdateDeps) {
  return {
    async currentFirmwareVersion(deviceId: string): Promise<string | null> {
      const row = (await db('devices').where({ id: deviceId }).first('firmware_version')) as { firmware_version: string | null } | undefined;
      return row?.firmware_version ?? null;
    },

    async recordUpdateProgress(p: UpdateProgress): Promise<void> {
      await recordUpdateProgress(db, p);
    },

    /**
     * The request, retained: a device that is offline now gets it when it connects. Each publish
     * carries a fresh link (the workflow re-sends before an old one expires). Returns the link's expiry.
     */
    async publishOtaRequest(a: { deviceId: string; updateId: string; releaseId: string; version: string; size: number; sha256: string; signature: string }): Promise<{ linkExpiresAt: number }> {
      if (!firmwareBaseUrl) throw new ValidationError('PUBLIC_URL: the worker has no address of the API to give devices for downloads', []);
      const expires = Math.floor(Date.now() / 1000) + downloadUrlTtlS;
      const msg: OtaRequestMessage = {
        updateId: a.updateId,
        version: a.version,
        url: downloadUrl(firmwareBaseUrl, credentials, { releaseId: a.releaseId, deviceId: a.deviceId, expires }),
        size: a.size,
        sha256: a.sha256,
        signature: a.signature,
      };
      await publisher.publish(topics.otaSet(a.deviceId), JSON.stringify(msg), { qos: 1, retain: true });
      return { linkExpiresAt: expires * 1000 };
    },

    /** Tells a device to stop this update (it does if it has not begun installing), and leaves no request behind. */
    async publishOtaCancel(a: { deviceId: string; updateId: string }): Promise<void> {
      await publisher.publish(topics.otaSet(a.deviceId), '', { qos: 1, retain: true });
      await publisher.publish(topics.otaSet(a.deviceId), JSON.stringify({ updateId: a.updateId, cancel: true }), { qos: 1, retain: false });
    },

    /** Clears the retained request once the update is over, so a device that reconnects later is not asked again. */
    async clearOtaRequest(deviceId: string): Promise<void> {
      await publisher.publish(topics.otaSet(deviceId), '', { qos: 1, retain: true });
    },
  };
}
