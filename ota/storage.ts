// Where firmware images live, behind one small interface: a local directory by default
// (DATA_DIR/firmware), an S3-compatible bucket as the production option (docs/ota.md). An image is
// written once, streamed in (never held whole in memory: its size and SHA-256 are computed as it
// passes), and read back as a stream, whole or from a byte range, for resumable downloads.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface StoredImage {
  size: number;
  sha256: string;
}

export class ImageTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the image is larger than ${limit} bytes`);
  }
}

export interface FirmwareStorage {
  readonly kind: 'local' | 's3';
  /** Streams `source` in under `key`; rejects with ImageTooLargeError past `maxBytes` (nothing is kept). */
  write(key: string, source: Readable, maxBytes: number): Promise<StoredImage>;
  /** The image's bytes [start, end] (inclusive), or all of it. */
  read(key: string, range?: { start: number; end: number }): Readable;
  /** Its size, or null when there is no such image. */
  size(key: string): Promise<number | null>;
  /** A path to hand a worker thread (signing reads the file there); local storage only. */
  localPath(key: string): string;
  remove(key: string): Promise<void>;
}

const KEY = /^[A-Za-z0-9_-]{1,128}$/;

/** Counts and hashes what passes, and stops the stream past the limit. */
function meter(maxBytes: number, into: { size: number; hash: ReturnType<typeof createHash> }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      into.size += chunk.length;
      if (into.size > maxBytes) return done(new ImageTooLargeError(maxBytes));
      into.hash.update(chunk);
      done(null, chunk);
    },
  });
}

export function localFirmwareStorage(dir: string): FirmwareStorage {
  const file = (key: string) => {
    if (!KEY.test(key)) throw new Error(`not a storage key: ${JSON.stringify(key)}`);
    return path.join(dir, `${key}.bin`);
  };
  return {
    kind: 'local',
    async write(key, source, maxBytes) {
      await fs.promises.mkdir(dir, { recursive: true });
      const target = file(key);
      // Into a temporary file, renamed into place once complete: a half-written image never has the key's name.
      const tmp = `${target}.${randomBytes(4).toString('hex')}.part`;
      const m = { size: 0, hash: createHash('sha256') };
      try {
        await pipeline(source, meter(maxBytes, m), fs.createWriteStream(tmp, { mode: 0o640 }));
        await fs.promises.rename(tmp, target);
      } catch (err) {
        await fs.promises.rm(tmp, { force: true });
        throw err;
      }
      return { size: m.size, sha256: m.hash.digest('hex') };
    },
    read(key, range) {
      return fs.createReadStream(file(key), range ? { start: range.start, end: range.end } : {});
    },
    async size(key) {
      try {
        return (await fs.promises.stat(file(key))).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    localPath: file,
    async remove(key) {
      await fs.promises.rm(file(key), { force: true });
    },
  };
}
