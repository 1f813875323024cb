import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { qrPng, qrSvg } from './qr';
import { syntheticRow } from './synthetic-rows';

const PAYLOADS = [
  'RDM1:ABCDEFGHJKMN:0123456789',
  syntheticRow(1).qrPayload,
  syntheticRow(2).qrPayload,
  'https://example.com/pair?device=ABCDEFGHJKMN&code=0123456789', // byte mode, larger version
];

function matrixOf(text: string): { size: number; dark: (r: number, c: number) => boolean } {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  return { size: modules.size, dark: (r, c) => modules.get(r, c) === 1 };
}

function decodePng(png: Buffer): { image: PNG; text: string | undefined } {
  const image = PNG.sync.read(png);
  return { image, text: jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data };
}

describe('qrPng', () => {
  it.each(PAYLOADS)('decodes back to %s', (text) => {
    expect(decodePng(qrPng(text)).text).toBe(text);
  });

  it('is a 1-bit grayscale PNG with an 8 px module and a 4-module quiet zone by default', () => {
    const png = qrPng(PAYLOADS[0]!);
    const side = (matrixOf(PAYLOADS[0]!).size + 8) * 8;
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]]).toEqual([side, side, 1, 0]);
    expect(png.length).toBeLessThan(1024);
  });

  it('draws every module where the QR matrix has it, with custom scale and margin', () => {
    const text = PAYLOADS[3]!;
    const scale = 3;
    const margin = 2;
    const { size, dark } = matrixOf(text);
    const { image, text: decoded } = decodePng(qrPng(text, { scale, margin }));
    expect(decoded).toBe(text);
    expect(image.width).toBe((size + 2 * margin) * scale);
    const black = (x: number, y: number) => image.data[(y * image.width + x) * 4] === 0;
    for (let r = -margin; r < size + margin; r++) {
      for (let c = -margin; c < size + margin; c++) {
        const inside = r >= 0 && c >= 0 && r < size && c < size;
        // every pixel of the module, not just its centre
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const x = (c + margin) * scale + dx;
            const y = (r + margin) * scale + dy;
            if (black(x, y) !== (inside && dark(r, c))) throw new Error(`pixel ${x},${y} differs from module ${r},${c}`);
          }
        }
      }
    }
  });

  it('rejects a scale or margin that is not a usable integer', () => {
    expect(() => qrPng('x', { scale: 0 })).toThrow(RangeError);
    expect(() => qrPng('x', { scale: 2.5 })).toThrow(RangeError);
    expect(() => qrPng('x', { margin: -1 })).toThrow(RangeError);
  });
});

describe('qrSvg', () => {
  const SVG =
    /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="(\d+)" height="(\d+)" viewBox="0 0 (\d+) (\d+)" shape-rendering="crispEdges"><rect width="(\d+)" height="(\d+)" fill="#fff"\/><path stroke="#000" d="([^"<>&]*)"\/><\/svg>$/;

  /** Replays the path: each `h` draws a run of dark modules on row floor(y). */
  function rasterize(d: string, side: number): boolean[][] {
    const grid = Array.from({ length: side }, () => new Array<boolean>(side).fill(false));
    let x = 0;
    let y = 0;
    for (const [, cmd, a, b] of d.matchAll(/([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?/g)) {
      if (cmd === 'M') [x, y] = [Number(a), Number(b)];
      else if (cmd === 'm') [x, y] = [x + Number(a), y + Number(b)];
      else {
        for (let i = 0; i < Number(a); i++) grid[Math.floor(y)]![x + i] = true;
        x += Number(a);
      }
    }
    return grid;
  }

  it.each(PAYLOADS)('is well-formed, sized, and draws exactly the QR matrix of %s', (text) => {
    const { size, dark } = matrixOf(text);
    const side = size + 8;
    const match = SVG.exec(qrSvg(text));
    expect(match).not.toBeNull();
    const [, width, height, vbW, vbH, rectW, rectH, d] = match!;
    expect([width, height].map(Number)).toEqual([side * 8, side * 8]);
    expect([vbW, vbH, rectW, rectH].map(Number)).toEqual([side, side, side, side]);
    const grid = rasterize(d!, side);
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        const expected = r >= 4 && c >= 4 && r < size + 4 && c < size + 4 && dark(r - 4, c - 4);
        if (grid[r]![c] !== expected) throw new Error(`module ${r},${c} differs`);
      }
    }
  });

  it('honours scale and margin', () => {
    const { size } = matrixOf(PAYLOADS[0]!);
    const [, width, , vbW] = SVG.exec(qrSvg(PAYLOADS[0]!, { scale: 2, margin: 1 }))!;
    expect([Number(width), Number(vbW)]).toEqual([(size + 2) * 2, size + 2]);
  });
});
