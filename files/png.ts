// Minimal PNG writer for 1-bit grayscale images: exactly what a QR code needs, with 32 times less
// raw data to deflate than the RGBA a generic encoder builds. Three chunks: IHDR, one IDAT, IEND.
import { deflateSync } from 'node:zlib';
import { crc32 } from './crc32';

// Level 3 deflates a QR image twice as fast as the default 6, for ~60 more bytes (~370 B a code).
const DEFLATE_LEVEL = 3;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IEND = chunk('IEND', Buffer.alloc(0));

/** Bytes per scanline of a 1-bit image, excluding the leading filter-type byte. */
export function rowBytes(width: number): number {
  return (width + 7) >> 3;
}

/**
 * Encodes a 1-bit grayscale PNG (bit 1 = white, 0 = black). `scanlines` holds `height` rows of
 * `1 + rowBytes(width)` bytes, each starting with its PNG filter type (0 = none, 2 = up...).
 */
export function grayscale1BitPng(width: number, height: number, scanlines: Buffer): Buffer {
  if (scanlines.length !== height * (1 + rowBytes(width))) throw new RangeError('scanlines do not match the image size');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // colour type: grayscale
  // bytes 10-12: deflate compression, adaptive filtering, no interlace (all 0)
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(scanlines, { level: DEFLATE_LEVEL })), IEND]);
}

/** length, type, data, CRC over type + data. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
