import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { bundleZip } from './bundle-zip';
import { csvLine } from './csv';
import { DEVICE_CSV_COLUMNS, qrFileName, type DeviceExportRow } from './device-export';
import { qrPng } from './qr';
import { syntheticRow } from './synthetic-rows';
import { countingSink, readZip } from './test-support';

/** A row source that counts what it is asked for, and can fail on a given pass after some rows. */
function rowSource(count: number, failure?: { pass: number; afterRows: number; error: Error }) {
  const stats = { passes: 0, pulled: [0, 0], closed: 0 };
  const openRows = (): AsyncIterable<DeviceExportRow> => {
    const pass = stats.passes++;
    return (async function* () {
      try {
        for (let i = 0; i < count; i++) {
          if (failure?.pass === pass && failure.afterRows === i) throw failure.error;
          stats.pulled[pass]!++;
          yield syntheticRow(i);
        }
      } finally {
        stats.closed++;
      }
    })();
  };
  return { openRows, stats };
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 5000) throw new Error('timed out');
    await sleep(10);
  }
}

describe('bundleZip', () => {
  it('holds devices.csv then one QR image per device', async () => {
    const count = 3000;
    const { openRows, stats } = rowSource(count);
    const entries = await readZip(await collect(bundleZip(openRows)));
    expect(stats).toEqual({ passes: 2, pulled: [count, count], closed: 2 });

    const [csv, ...images] = entries;
    expect(csv!.name).toBe('devices.csv');
    expect(csv!.method).toBe(8);
    const lines = csv!.data.toString('utf8').split('\r\n');
    expect(lines).toHaveLength(count + 2); // header, rows, '' after the last CRLF
    expect(lines[0] + '\r\n').toBe(csvLine(DEVICE_CSV_COLUMNS));
    expect(lines[count + 1]).toBe('');

    expect(images).toHaveLength(count);
    expect(new Set(images.map((image) => image.name)).size).toBe(count);
    images.forEach((image, i) => {
      const row = syntheticRow(i);
      expect(image.name).toBe(qrFileName(row.deviceId));
      expect(image.method).toBe(0);
      expect(lines[i + 1]!.startsWith(`"${row.deviceId}",`)).toBe(true);
      if (i % 10 === 0 && !image.data.equals(qrPng(row.qrPayload))) throw new Error(`${image.name} is not its row's code`);
    });
    for (const i of [0, 1, 1234, count - 1]) {
      const png = PNG.sync.read(images[i]!.data);
      expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(syntheticRow(i).qrPayload);
    }
  });

  it('is a valid archive for no devices', async () => {
    const entries = await readZip(await collect(bundleZip(rowSource(0).openRows)));
    expect(entries.map((entry) => entry.data.toString())).toEqual([csvLine(DEVICE_CSV_COLUMNS)]);
  });

  it('stops drawing QR codes while the consumer is not reading', async () => {
    const count = 2000;
    const { openRows, stats } = rowSource(count);
    let release = null as (() => void) | null;
    let stallOnce = true;
    const sink = new Writable({
      write(_chunk: Buffer, _encoding, done) {
        // Stop taking data once the images are flowing, like a client that stopped downloading.
        if (stallOnce && stats.pulled[1]! > 500) {
          stallOnce = false;
          release = done;
        } else done();
      },
    });
    const finished = pipeline(bundleZip(openRows), sink);

    await until(() => release !== null);
    let before = -1;
    await until(() => {
      const settled = stats.pulled[1] === before;
      before = stats.pulled[1]!;
      return settled;
    });
    await sleep(200);
    expect(stats.pulled[1]).toBe(before);
    // Measured: ~110 images past the stall, i.e. the stream buffers' worth (more on Node >= 22, whose
    // buffers are 4 times larger), but nowhere near all of them.
    expect(before).toBeLessThan(1000);

    release!();
    await finished;
    expect(stats.pulled).toEqual([count, count]);
  });

  it.each([
    ['reading rows for the CSV', 0],
    ['reading rows for the images', 1],
  ])('destroys the stream with the source error when %s', async (_when, pass) => {
    const error = new Error('connection to the database lost');
    const { openRows, stats } = rowSource(2000, { pass, afterRows: 1500, error });
    const stream = bundleZip(openRows);
    await expect(pipeline(stream, countingSink())).rejects.toBe(error);
    expect(stream.destroyed).toBe(true);
    expect(stats.closed).toBe(pass + 1);
  });

  it('destroys the stream when openRows itself throws', async () => {
    const error = new Error('no such batch');
    const stream = bundleZip(() => {
      throw error;
    });
    await expect(pipeline(stream, countingSink())).rejects.toBe(error);
  });

  it.each([
    ['the CSV', 0, 100],
    ['the images', 1, 1000],
  ])('closes the row source when the consumer goes away during %s', async (_during, pass, rowsIn) => {
    const { openRows, stats } = rowSource(20_000);
    const stream = bundleZip(openRows);
    stream.on('data', () => {
      if (stats.passes === pass + 1 && stats.pulled[pass]! >= rowsIn) stream.destroy();
    });
    await until(() => stats.closed === pass + 1);
    expect(stats.passes).toBe(pass + 1);
    expect(stats.pulled[pass]).toBeLessThan(20_000);
  });
});
