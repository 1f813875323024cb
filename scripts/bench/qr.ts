// QR image and bundle benchmark: `npx tsx scripts/bench/qr.ts [codes]` (default 2,000 codes).
// Compares our hand-written PNG/SVG with the qrcode package's own renderers, then streams a
// 10,000-device bundle to a null sink and reports its time and peak memory.
import os from 'node:os';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import QRCode from 'qrcode';
import { bundleZip } from '../../files/bundle-zip';
import { qrPng, qrSvg } from '../../files/qr';
import { syntheticRow, syntheticRows } from '../../files/synthetic-rows';

const codes = Number(process.argv[2] ?? 2000);
if (!Number.isInteger(codes) || codes < 1) throw new Error(`usage: tsx scripts/bench/qr.ts [codes], got ${process.argv[2]}`);
const BUNDLE_DEVICES = 10_000;

/** Best of three timed passes over `payloads`, in milliseconds per call (the best is the least disturbed). */
async function perCode(payloads: string[], render: (text: string) => unknown): Promise<number> {
  let best = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    const start = process.hrtime.bigint();
    for (const text of payloads) await render(text);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6 / payloads.length);
  }
  return best;
}

/** Streams the bundle to a sink that only counts, sampling memory at every chunk. */
async function bundle(): Promise<{ seconds: number; bytes: number; peakRss: number; peakHeap: number }> {
  let bytes = 0;
  let peakRss = 0;
  let peakHeap = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      const { rss, heapUsed } = process.memoryUsage();
      peakRss = Math.max(peakRss, rss);
      peakHeap = Math.max(peakHeap, heapUsed);
      done();
    },
  });
  const start = process.hrtime.bigint();
  await pipeline(bundleZip(() => syntheticRows(BUNDLE_DEVICES)), sink);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes, peakRss, peakHeap };
}

const RENDERERS = {
  'ours png': (text: string) => qrPng(text),
  'ours svg': (text: string) => qrSvg(text),
  'qrcode png': (text: string) => QRCode.toBuffer(text, { type: 'png', errorCorrectionLevel: 'M' }),
  'qrcode svg': (text: string) => QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M' }),
  'QRCode.create': (text: string) => QRCode.create(text, { errorCorrectionLevel: 'M' }),
};

async function main(): Promise<void> {
  const payloads = Array.from({ length: codes }, (_, i) => syntheticRow(i).qrPayload);
  // Warm-up: let the JIT see every path before anything is timed.
  for (const render of Object.values(RENDERERS)) for (const text of payloads.slice(0, 500)) await render(text);
  const ms: Record<string, number> = {};
  for (const [name, render] of Object.entries(RENDERERS)) ms[name] = await perCode(payloads, render);
  const memoryBefore = process.memoryUsage();
  const zip = await bundle();

  const cpus = os.cpus();
  const mb = (n: number) => (n / 2 ** 20).toFixed(0);
  console.log(`${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, Node ${process.version}`);
  console.log(`\nPer code, best of 3 passes over ${codes} payloads like ${payloads[0]}`);
  const row = (ours: number, raw: number) => ({ 'ours ms': ours.toFixed(3), 'qrcode ms': raw.toFixed(3), 'ours/qrcode': (ours / raw).toFixed(2) });
  console.table({
    png: row(ms['ours png']!, ms['qrcode png']!),
    svg: row(ms['ours svg']!, ms['qrcode svg']!),
  });
  console.log(`(of which QRCode.create, the matrix alone: ${ms['QRCode.create']!.toFixed(3)} ms)`);
  console.log(`\nbundleZip of ${BUNDLE_DEVICES} devices to a null sink`);
  console.table({
    bundle: {
      seconds: zip.seconds.toFixed(2),
      'zip MB': (zip.bytes / 2 ** 20).toFixed(1),
      'RSS MB before/peak': `${mb(memoryBefore.rss)} / ${mb(zip.peakRss)}`,
      'heap MB before/peak': `${mb(memoryBefore.heapUsed)} / ${mb(zip.peakHeap)}`,
    },
  });
}

void main();
