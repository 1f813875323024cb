// Reading `POST /firmware` (multipart/form-data): the text fields and one `file` part, the file
// streamed straight into firmware storage (ota/storage.ts) so an image is never held whole in
// memory. The fields come first (curl -F in order, every form library in the order appended): they
// are checked before a byte of the image is stored, so a duplicate version or a bad field costs
// nothing; a field after the file is refused (400), and what was stored of the image removed.
import busboy from 'busboy';
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { PayloadTooLargeError, ValidationError } from '../domain/errors';
import { ImageTooLargeError, type FirmwareStorage, type StoredImage } from '../ota/storage';

export const UPLOAD_FIELDS = ['version', 'model', 'notes', 'companyId'] as const;
type FieldName = (typeof UPLOAD_FIELDS)[number];
export type UploadFields = Partial<Record<FieldName, string>>;

const MAX_FIELD_BYTES = 16 * 1024;

export interface UploadOptions {
  storage: FirmwareStorage;
  storageKey: string;
  maxBytes: number;
  /** Checks the fields (throws a 4xx AppError); called once, before the image is stored when they came first. */
  check(fields: UploadFields): Promise<void>;
}

export function receiveFirmwareUpload(req: Request, o: UploadOptions): Promise<{ fields: UploadFields; image: StoredImage }> {
  if (!/^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
    return Promise.reject(new ValidationError('the body must be multipart/form-data with a `file` part and the fields version, model, notes?', []));
  }
  return new Promise((resolve, reject) => {
    const fields: UploadFields = {};
    let checked: Promise<void> | null = null;
    let stored: Promise<StoredImage> | null = null;
    let failed: Error | null = null;
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fields: UPLOAD_FIELDS.length, fieldSize: MAX_FIELD_BYTES, parts: UPLOAD_FIELDS.length + 1, fileSize: o.maxBytes + 1 } });
    } catch (err) {
      reject(new ValidationError(`malformed multipart body: ${(err as Error).message}`, []));
      return;
    }
    const fail = (err: Error) => {
      if (failed) return;
      failed = err;
      req.unpipe(bb);
      req.resume(); // drain what the client still sends, so it reads our answer
      void (stored ?? Promise.resolve(null))
        .catch(() => null)
        .then(() => o.storage.remove(o.storageKey))
        .finally(() => reject(err));
    };
    const check = () => (checked ??= o.check({ ...fields }));

    bb.on('field', (name, value, info) => {
      if (!(UPLOAD_FIELDS as readonly string[]).includes(name)) return fail(new ValidationError(`unknown field '${name}'`, [{ path: name, message: `unknown field; expected ${UPLOAD_FIELDS.join(', ')} and file` }]));
      if (info.valueTruncated) return fail(new ValidationError(`field '${name}' is longer than ${MAX_FIELD_BYTES} bytes`, [{ path: name, message: 'too long' }]));
      if (stored) return fail(new ValidationError(`field '${name}' came after the file: send the fields first`, [{ path: name, message: 'send it before the file' }]));
      fields[name as FieldName] = value;
    });
    bb.on('file', (name, stream: Readable) => {
      if (name !== 'file') {
        stream.resume();
        return fail(new ValidationError(`unexpected file part '${name}': the image goes in 'file'`, [{ path: name, message: "the image's part is named file" }]));
      }
      stream.on('limit', () => fail(new PayloadTooLargeError(`the image is larger than FIRMWARE_MAX_BYTES (${o.maxBytes} bytes)`)));
      // Fields first: checked before the image is stored. The stream waits (back-pressure) meanwhile.
      stored = check().then(() => o.storage.write(o.storageKey, stream, o.maxBytes));
      stored.catch((err: Error) => {
        stream.resume();
        fail(err instanceof ImageTooLargeError ? new PayloadTooLargeError(`the image is larger than FIRMWARE_MAX_BYTES (${o.maxBytes} bytes)`) : err);
      });
    });
    bb.on('partsLimit', () => fail(new ValidationError('too many parts: one file and the fields version, model, notes?', [])));
    bb.on('filesLimit', () => fail(new ValidationError('one file per upload', [])));
    bb.on('fieldsLimit', () => fail(new ValidationError('too many fields', [])));
    bb.on('error', (err: Error) => fail(new ValidationError(`malformed multipart body: ${err.message}`, [])));
    bb.on('close', () => {
      if (failed) return;
      if (!stored) return fail(new ValidationError("no image: the body needs a part named 'file'", [{ path: 'file', message: 'required' }]));
      stored
        .then(async (image) => {
          if (image.size === 0) throw new ValidationError('the image is empty', [{ path: 'file', message: 'empty' }]);
          resolve({ fields, image });
        })
        .catch((err: Error) => fail(err));
    });
    req.on('aborted', () => fail(new ValidationError('the upload was aborted', [])));
    req.pipe(bb);
  });
}
