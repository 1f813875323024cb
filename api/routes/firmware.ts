// Firmware releases (design/contract.md "firmware"; issue 11): upload (multipart, streamed into
// storage, then signed), list, read, promote to `stable`, the public key devices verify with, and
// the image itself for devices (a time-limited link, or Basic auth by the device's MQTT login),
// with HTTP range requests so an interrupted download resumes.
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { companiesWith, listScope } from '../http/policy';
import { enforce } from '../enforce';
import { entityId, errorResponse, idParams, page, pageQuery } from '../schemas';
import { receiveFirmwareUpload, type UploadFields } from '../firmware-upload';
import { CHANNELS, MAX_NOTES_LENGTH, MODEL_PATTERN, type FirmwareRelease } from '../../domain/firmware';
import { isSemVer, MAX_VERSION_LENGTH } from '../../domain/semver';
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError, type ErrorDetail } from '../../domain/errors';
import { newEntityId, DEVICE_ID_PATTERN } from '../../domain/ids';
import { getCompany } from '../../db/repositories/companies';
import { getRelease, insertRelease, listReleases, promoteRelease, releaseExists } from '../../db/repositories/firmware';
import { checkDownloadGrant } from '../../ota/download-url';
import type { FirmwareStorage } from '../../ota/storage';
import type { FirmwareSigner } from '../../ota/signing';
import type { DeviceAuthenticator } from '../../broker/authenticator';
import { deviceIdOfUsername } from '../../domain/broker-identity';

export interface FirmwareDeps {
  storage: FirmwareStorage;
  signer: FirmwareSigner;
  /** FIRMWARE_MAX_BYTES. */
  maxBytes: number;
  /** Checks a device's MQTT login for Basic-auth downloads. */
  devices: DeviceAuthenticator;
}

export const firmwareSchema = z.object({
  id: z.string(),
  companyId: z.string(),
  model: z.string(),
  version: z.string(),
  size: z.number().int(),
  sha256: z.string().describe('hex SHA-256 of the image'),
  signature: z.string().describe("base64 Ed25519 signature of the image's bytes (GET /firmware/public-key)"),
  keyFingerprint: z.string(),
  channel: z.enum(CHANNELS),
  notes: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  promotedAt: z.string().nullable(),
  promotedBy: z.string().nullable(),
});

const listQuery = z
  .object({ ...pageQuery, model: z.string().regex(MODEL_PATTERN).optional(), channel: z.enum(CHANNELS).optional(), companyId: entityId.optional() })
  .strict();
const promoteBody = z.object({ channel: z.literal('stable') }).strict();
const imageQuery = z
  .object({
    device: z.string().regex(DEVICE_ID_PATTERN).optional(),
    expires: z.string().regex(/^\d{1,12}$/).optional(),
    sig: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'the link signature (base64url)').optional(),
  })
  .strict();

/** The fields' rules; every problem named at once. */
function checkFields(f: UploadFields): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (!f.version) problems.push({ path: 'version', message: 'required: a semantic version like 1.4.0' });
  else if (!isSemVer(f.version)) problems.push({ path: 'version', message: `not a semantic version (at most ${MAX_VERSION_LENGTH} characters, like 1.4.0 or 2.0.0-rc.1)` });
  if (!f.model) problems.push({ path: 'model', message: 'required: the device model this image is for' });
  else if (!MODEL_PATTERN.test(f.model)) problems.push({ path: 'model', message: 'must be 1-64 letters, digits, ., _ or -' });
  if (f.notes !== undefined && f.notes.length > MAX_NOTES_LENGTH) problems.push({ path: 'notes', message: `at most ${MAX_NOTES_LENGTH} characters` });
  if (f.companyId !== undefined && !entityId.safeParse(f.companyId).success) problems.push({ path: 'companyId', message: 'must be an ID' });
  return problems;
}

/** A single `bytes=a-b` / `bytes=a-` / `bytes=-n` range of a file of `size` bytes; null: the whole file; 'unsatisfiable': 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // not a form we serve partially: the whole image (RFC 9110 allows ignoring it)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export function firmwareRoutes(d: ApiDeps, f: FirmwareDeps) {
  /** The company a release goes to: the named one, else the caller's only company where they may upload. */
  async function uploadCompany(access: Parameters<typeof enforce>[0], named: string | undefined): Promise<string> {
    const mine = companiesWith(access.principal, 'firmware:upload');
    const companyId = named ?? (mine.length === 1 && !access.principal.platformAdmin ? mine[0]! : undefined);
    if (companyId === undefined) throw new ValidationError('companyId: name the company the release belongs to', [{ path: 'companyId', message: 'required: the caller uploads for no single company' }]);
    const company = await getCompany(d.db, companyId);
    enforce(access, company && { kind: 'company', companyId }, 'company', companyId);
    return companyId;
  }

  /** A device's right to the image: a valid link for it, or its MQTT login; the device's ID. */
  async function authorizeDevice(req: Request, releaseId: string, q: z.infer<typeof imageQuery>): Promise<string> {
    if (q.sig !== undefined || q.device !== undefined || q.expires !== undefined) {
      if (!q.sig || !q.device || !q.expires) throw new UnauthorizedError('a download link carries device, expires and sig');
      const verdict = checkDownloadGrant(d.credentials, { releaseId, deviceId: q.device, expires: Number(q.expires) }, q.sig);
      if (verdict === 'expired') throw new UnauthorizedError('this download link has expired: the platform sends a new one with the next request');
      if (verdict !== 'ok') throw new UnauthorizedError('this download link is not valid');
      return q.device;
    }
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const username = i < 0 ? decoded : decoded.slice(0, i);
      const deviceId = deviceIdOfUsername(username);
      if (deviceId && i > 0 && (await f.devices.authenticate(username, decoded.slice(i + 1)))) return deviceId;
    }
    throw new UnauthorizedError('a device downloads with its link, or with HTTP Basic auth by its MQTT username and secret');
  }

  async function sendImage(req: Request, res: Response, release: FirmwareRelease & { storageKey: string }): Promise<void> {
    const etag = `"${release.sha256}"`;
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Cache-Control', 'private, no-transform');
    res.setHeader('Content-Disposition', `attachment; filename="${release.model}-${release.version}.bin"`);
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    // If-Range with another validator: the image changed (it cannot, but a proxy may be confused): send it whole.
    const ifRange = req.headers['if-range'];
    const range = ifRange && ifRange !== etag ? null : parseRange(req.headers.range, release.size);
    if (range === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${release.size}`);
      res.status(416).json({ error: { code: 'range_not_satisfiable', message: `the image has ${release.size} bytes` } });
      return;
    }
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${release.size}`);
      res.setHeader('Content-Length', String(range.end - range.start + 1));
    } else {
      res.status(200);
      res.setHeader('Content-Length', String(release.size));
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Streamed from storage with back-pressure: the event loop only moves buffers.
    await pipeline(f.storage.read(release.storageKey, range ?? undefined), res).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE') d.log.warn({ err, releaseId: release.id }, 'a firmware download broke off');
    });
  }

  return [
    route({
      method: 'post',
      path: '/firmware',
      tag: 'firmware',
      summary: 'Upload a firmware image (multipart: version, model, notes?, companyId?, then file): stored, hashed and signed; starts in the staging channel',
      permission: 'firmware:upload',
      status: 201,
      responses: {
        201: { description: 'the release', schema: firmwareSchema, headers: { Location: 'the release' } },
        400: errorResponse('not multipart, a field missing or malformed (details name it), an unknown field, an empty image'),
        404: errorResponse('no such company'),
        409: errorResponse('that model already has that version (firmware_exists)'),
        413: errorResponse('the image is larger than FIRMWARE_MAX_BYTES'),
      },
      handler: async ({ req, res, access, principal }) => {
        const id = newEntityId();
        let companyId = '';
        const { fields, image } = await receiveFirmwareUpload(req, {
          storage: f.storage,
          storageKey: id,
          maxBytes: f.maxBytes,
          check: async (fl) => {
            const problems = checkFields(fl);
            if (problems.length) throw new ValidationError(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
            companyId = await uploadCompany(access, fl.companyId);
            if (await releaseExists(d.db, companyId, fl.model!, fl.version!)) throw new ConflictError('firmware_exists', `model '${fl.model}' already has a release ${fl.version}`);
          },
        });
        try {
          const signature = await f.signer.signFile(f.storage.localPath(id));
          const release = await insertRelease(
            d.db,
            { id, companyId, model: fields.model!, version: fields.version!, size: image.size, sha256: image.sha256, signature, keyFingerprint: f.signer.fingerprint, notes: fields.notes ?? null, createdBy: principal.userId, storageKey: id },
            { userId: principal.userId, credentialId: principal.credentialId },
          );
          res.location(`/api/v1/firmware/${id}`);
          return release;
        } catch (err) {
          await f.storage.remove(id);
          throw err;
        }
      },
    }),

    route({
      method: 'get',
      path: '/firmware',
      tag: 'firmware',
      summary: 'Firmware releases, newest first, maybe of one model, channel or company',
      permission: 'firmware:read',
      query: listQuery,
      responses: { 200: { description: 'a page of releases', schema: page(firmwareSchema) } },
      handler: async ({ query, principal }) => {
        const scope = listScope(principal, 'firmware:read');
        let companyIds = scope?.companyIds ?? null;
        if (query.companyId) companyIds = companyIds === null || companyIds.includes(query.companyId) ? [query.companyId] : [];
        return listReleases(d.db, { companyIds, model: query.model, channel: query.channel, limit: query.limit, cursor: query.cursor });
      },
    }),

    route({
      method: 'get',
      path: '/firmware/public-key',
      tag: 'firmware',
      summary: 'The Ed25519 public key (PEM) that verifies every image signature: flashed into devices at the factory',
      permission: null,
      responses: { 200: { description: 'SPKI PEM', contentType: 'application/x-pem-file' } },
      handler: async ({ res }) => {
        res.setHeader('X-Key-Fingerprint', f.signer.fingerprint);
        res.type('application/x-pem-file').send(f.signer.publicKeyPem);
        return undefined;
      },
    }),

    route({
      method: 'get',
      path: '/firmware/:id',
      tag: 'firmware',
      summary: 'One firmware release',
      permission: 'firmware:read',
      params: idParams,
      responses: { 200: { description: 'the release', schema: firmwareSchema }, 404: errorResponse('no such release') },
      handler: async ({ params, access }) => {
        const release = await getRelease(d.db, params.id);
        enforce(access, release && { kind: 'company', companyId: release.companyId }, 'firmware release', params.id);
        const { storageKey: _key, ...shown } = release!;
        return shown;
      },
    }),

    route({
      method: 'post',
      path: '/firmware/:id/promote',
      tag: 'firmware',
      summary: 'Promote a release to the stable channel (what auto-updates install); again: answered as it is',
      permission: 'firmware:promote',
      params: idParams,
      body: promoteBody,
      responses: { 200: { description: 'the release, stable', schema: firmwareSchema }, 404: errorResponse('no such release') },
      handler: async ({ params, body, access, principal }) => {
        const release = await getRelease(d.db, params.id);
        enforce(access, release && { kind: 'company', companyId: release.companyId }, 'firmware release', params.id);
        return (await promoteRelease(d.db, params.id, body.channel, { userId: principal.userId, credentialId: principal.credentialId }))!;
      },
    }),

    route({
      method: 'get',
      path: '/firmware/:id/image',
      tag: 'firmware',
      summary: "A release's image for a device: by the link it was sent (device, expires, sig) or HTTP Basic auth by its MQTT login; Range requests resume a download",
      // Devices are not API users: the handler checks the link or the device's login itself.
      permission: null,
      params: idParams,
      query: imageQuery,
      responses: {
        200: { description: 'the image', contentType: 'application/octet-stream' },
        206: { description: 'the requested byte range', contentType: 'application/octet-stream' },
        401: errorResponse('no valid link or device login'),
        404: errorResponse('no such release, or not one for this device'),
        416: errorResponse('the range lies outside the image'),
      },
      handler: async ({ req, res, params, query }) => {
        const deviceId = await authorizeDevice(req, params.id, query);
        const release = await getRelease(d.db, params.id);
        // A device gets its own company's images only (a link names both; a login proves the device).
        const device = (await d.db('devices').where({ id: deviceId }).first('company_id')) as { company_id: string | null } | undefined;
        if (!release || !device || device.company_id !== release.companyId) throw new NotFoundError('firmware release', params.id);
        await sendImage(req, res, release);
        return undefined;
      },
    }),
  ];
}

