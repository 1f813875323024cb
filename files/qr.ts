// QR code images for device labels. The matrix comes from `qrcode`; the images are written here
// because its own PNG path (RGBA pixels through pngjs) costs ~6x more per code (2.1 ms vs 0.34 ms
// in scripts/bench/qr.ts), which adds up over a batch of 100,000 devices.
// Error correction M: a label still scans with ~15% of it damaged.
import QRCode from 'qrcode';
import { grayscale1BitPng, rowBytes } from './png';

export interface QrImageOptions {
  /** Pixels per module (PNG) or user units per module (SVG width/height). Default 8. */
  scale?: number;
  /** Quiet zone in modules; the QR specification asks for 4. Default 4. */
  margin?: number;
}

interface Layout {
  modules: Uint8Array; // size * size, row-major, 1 = dark
  size: number;
  scale: number;
  margin: number;
  /** Side in modules, quiet zone included. */
  side: number;
}

function layout(text: string, opts: QrImageOptions): Layout {
  const scale = opts.scale ?? 8;
  const margin = opts.margin ?? 4;
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`scale must be a positive integer, got ${scale}`);
  if (!Number.isInteger(margin) || margin < 0) throw new RangeError(`margin must be a non-negative integer, got ${margin}`);
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  return { modules: modules.data, size: modules.size, scale, margin, side: modules.size + 2 * margin };
}

/** 1-bit grayscale PNG of the QR code for `text`. */
export function qrPng(text: string, opts: QrImageOptions = {}): Buffer {
  const { modules, size, scale, margin, side } = layout(text, opts);
  const width = side * scale;
  const stride = 1 + rowBytes(width);
  // Each module row becomes `scale` pixel rows: the first is drawn (filter 0: none), the others
  // use filter 2 ("same as the row above") and stay all zero, which costs nothing to draw and
  // deflates to almost nothing.
  const scanlines = Buffer.alloc(width * stride);
  for (let row = 0; row < side; row++) {
    const first = row * scale * stride;
    scanlines.fill(0xff, first + 1, first + stride); // white
    const r = row - margin;
    if (r >= 0 && r < size) {
      for (let c = 0; c < size; c++) {
        if (!modules[r * size + c]) continue;
        for (let x = (margin + c) * scale, end = x + scale; x < end; x++) scanlines[first + 1 + (x >> 3)] &= ~(0x80 >> (x & 7));
      }
    }
    for (let k = 1; k < scale; k++) scanlines[first + k * stride] = 2;
  }
  return grayscale1BitPng(width, width, scanlines);
}

/**
 * SVG of the QR code for `text`: a white background and one path in which each horizontal run of
 * dark modules is a 1-unit-wide stroke, so a code is a few hundred bytes and scales losslessly.
 */
export function qrSvg(text: string, opts: QrImageOptions = {}): string {
  const { modules, size, scale, margin, side } = layout(text, opts);
  let d = '';
  for (let r = 0; r < size; r++) {
    let penX = -1; // end of the previous run in this row, -1 before the first one
    for (let c = 0; c < size; ) {
      if (!modules[r * size + c]) {
        c++;
        continue;
      }
      const start = c;
      while (c < size && modules[r * size + c]) c++;
      // The stroke is centred on its line, hence y + .5; later runs in a row move relatively.
      d += penX < 0 ? `M${margin + start} ${margin + r}.5` : `m${start - penX} 0`;
      d += `h${c - start}`;
      penX = c;
    }
  }
  const px = side * scale;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px}" height="${px}" viewBox="0 0 ${side} ${side}" shape-rendering="crispEdges">` +
    `<rect width="${side}" height="${side}" fill="#fff"/><path stroke="#000" d="${d}"/></svg>`
  );
}
