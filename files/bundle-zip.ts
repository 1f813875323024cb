// The manufacturer's bundle: devices.csv plus one QR label image per device, streamed as a zip.
//
// Memory stays flat whatever the batch size: rows are read twice (once for the CSV, once for the
// images) instead of being held, and Readable.from asks the generator below for the next chunk only
// when the consumer has drained the previous ones, so no PNG is drawn before there is room for it.
// What does grow is the zip's central directory, ~65 bytes per device (6.5 MB for 100,000).
import { pipeline, Readable } from 'node:stream';
import { createDeflateRaw } from 'node:zlib';
import { crc32 } from './crc32';
import { csvChunks } from './csv';
import { qrFileName, type DeviceExportRow } from './device-export';
import { qrPng } from './qr';
import { ZipBuilder } from './zip-builder';

/**
 * Output chunk size for the images: ~40 entries (~13 ms of drawing), big enough that per-chunk
 * overhead vanishes, small enough that one chunk does not hold the event loop for long.
 */
const IMAGE_CHUNK_BYTES = 16 * 1024;

/**
 * Streams the bundle. `openRows` is called twice and must yield the same devices in the same order
 * both times (e.g. one query per pass). An error from it destroys the returned stream with that
 * error; destroying the returned stream stops (returns) the row iterator in progress.
 */
export function bundleZip(openRows: () => AsyncIterable<DeviceExportRow>): Readable {
  return Readable.from(bundleChunks(openRows), { objectMode: false });
}

async function* bundleChunks(openRows: () => AsyncIterable<DeviceExportRow>): AsyncGenerator<Buffer> {
  const zip = new ZipBuilder();
  yield* deflatedEntry(zip, 'devices.csv', csvChunks(openRows()));

  let chunk: Buffer[] = [];
  let chunkBytes = 0;
  for await (const row of openRows()) {
    for (const part of zip.stored(qrFileName(row.deviceId), qrPng(row.qrPayload))) {
      chunk.push(part);
      chunkBytes += part.length;
    }
    if (chunkBytes >= IMAGE_CHUNK_BYTES) {
      yield Buffer.concat(chunk, chunkBytes);
      chunk = [];
      chunkBytes = 0;
    }
  }
  if (chunkBytes > 0) yield Buffer.concat(chunk, chunkBytes);
  yield* zip.finish();
}

/** Header, data deflated on the fly (crc and size measured on the way in), data descriptor. */
async function* deflatedEntry(zip: ZipBuilder, name: string, data: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield zip.beginDeflated(name);
  let crc = 0;
  let size = 0;
  async function* measured(): AsyncGenerator<Buffer> {
    for await (const chunk of data) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      yield chunk;
    }
  }
  const deflate = createDeflateRaw();
  // pipeline destroys `deflate` with any error from the source, which the loop below then throws;
  // its callback has nothing left to do.
  pipeline(measured(), deflate, () => {});
  let compressedSize = 0;
  for await (const compressed of deflate as AsyncIterable<Buffer>) {
    compressedSize += compressed.length;
    yield compressed;
  }
  yield zip.endDeflated(crc, compressedSize, size);
}
