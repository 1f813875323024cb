// A device's download link for one firmware image: usable as it is until it expires (an HMAC of
// release, device and expiry under the platform key), so a device needs no other credential and a
// leaked link opens one image for a short while only. Devices may also send HTTP Basic auth with
// their MQTT login instead (api/routes/firmware-download.ts).
import { timingSafeEqual } from 'node:crypto';
import type { CredentialDeriver } from '../domain/credentials';

export const DOWNLOAD_PATH = (releaseId: string) => `/api/v1/firmware/${encodeURIComponent(releaseId)}/image`;

export interface DownloadGrant {
  releaseId: string;
  deviceId: string;
  /** Unix seconds. */
  expires: number;
}

const payload = (g: DownloadGrant) => `${g.releaseId}\0${g.deviceId}\0${g.expires}`;

export function downloadUrl(publicBase: string, credentials: CredentialDeriver, g: DownloadGrant): string {
  const u = new URL(DOWNLOAD_PATH(g.releaseId), publicBase);
  u.searchParams.set('device', g.deviceId);
  u.searchParams.set('expires', String(g.expires));
  u.searchParams.set('sig', credentials.downloadMac(payload(g)));
  return u.toString();
}

export type GrantCheck = 'ok' | 'expired' | 'invalid';

export function checkDownloadGrant(credentials: CredentialDeriver, g: DownloadGrant, sig: string, nowS = Math.floor(Date.now() / 1000)): GrantCheck {
  const want = Buffer.from(credentials.downloadMac(payload(g)));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return 'invalid';
  return g.expires < nowS ? 'expired' : 'ok';
}
