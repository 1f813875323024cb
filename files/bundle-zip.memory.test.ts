// Flat memory for a large bundle, in its own test file so that nothing else shares the heap.
//
// heapUsed alone is a poor signal: between collections it also counts garbage, so a peak depends on
// when the GC happens to run. Here a full collection runs before each sample, so the samples show
// what the stream actually retains (JS heap plus Buffers, which live outside it), and the bound can
// sit well above the real figure yet below what holding 20,000 images would take.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pipeline } from 'node:stream/promises';
import { bundleZip } from './bundle-zip';
import { syntheticRows } from './synthetic-rows';
import { countingSink } from './test-support';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void; // a context created after the flag gets gc()

function retained(): number {
  // Twice: some memory (Buffers freed by finalisers) is only reclaimed by the collection after.
  gc();
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

const MB = 2 ** 20;
const SAMPLE_EVERY = 512 * 1024; // output bytes between samples: ~20 samples over ~10 MB

it('keeps memory flat while streaming 20,000 devices', async () => {
  const devices = 20_000;
  const baseline = retained();
  let peak = baseline;
  let samples = 0;
  let nextSample = SAMPLE_EVERY;
  const sink = countingSink((bytes) => {
    if (bytes < nextSample) return;
    nextSample += SAMPLE_EVERY;
    samples++;
    peak = Math.max(peak, retained());
  });

  await pipeline(bundleZip(() => syntheticRows(devices)), sink);

  expect(samples).toBeGreaterThan(10);
  expect(sink.bytes).toBeGreaterThan(devices * 300);
  // Measured: ~3 MB, i.e. ~1.3 MB of stream state and buffers that stays flat, plus the zip central
  // directory (65 bytes a device). Holding the images instead would retain 7.6 MB of PNG alone.
  expect((peak - baseline) / MB).toBeLessThan(8);
}, 120_000);
