import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { batchCsv, csvField, csvLine } from './csv';
import { DEVICE_CSV_COLUMNS, type DeviceExportRow } from './device-export';
import { syntheticRow, syntheticRows } from './synthetic-rows';

/** RFC 4180 reader, just enough to check that what we write round-trips. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      records.push([...record, field]);
      record = [];
      field = '';
      i++;
    } else {
      field += ch;
    }
  }
  return records;
}

async function collect(rows: AsyncIterable<DeviceExportRow>): Promise<string> {
  const chunks: Buffer[] = [];
  await pipeline(
    batchCsv(rows),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(chunks).toString('utf8');
}

describe('csvField / csvLine', () => {
  it('leaves plain text, numbers and empty values bare', () => {
    expect(csvLine(['ABC', 42, -1.5, null, undefined, ''])).toBe('ABC,42,-1.5,,,\r\n');
  });

  it('quotes fields with commas, quotes or line breaks, doubling quotes (RFC 4180)', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField('Grüße 😀')).toBe('Grüße 😀');
  });

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(csvField('=HYPERLINK("http://evil","x")')).toBe(`"'=HYPERLINK(""http://evil"",""x"")"`);
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('-2+3')).toBe("'-2+3");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('\tcmd')).toBe("'\tcmd");
    expect(csvField('\rcmd')).toBe(`"'\rcmd"`);
    // only a leading trigger matters; numbers are data, not text
    expect(csvField('a=b')).toBe('a=b');
    expect(csvField(-5)).toBe('-5');
  });
});

describe('batchCsv', () => {
  it('writes the header, then one record per row in column order', async () => {
    const row = { ...syntheticRow(0), info: '=cmd|" /C calc"!A0, line 2\nend', model: null };
    const records = parseCsv(await collect((async function* () { yield row; })()));
    expect(records).toEqual([
      [...DEVICE_CSV_COLUMNS],
      [
        row.deviceId,
        row.batchName,
        row.batchId,
        row.status,
        row.secret,
        row.pairingCode,
        `qr/${row.deviceId}.png`,
        row.qrPayload,
        `'${row.info}`,
        '',
        row.color,
        '2025-01-15T08:30:00.000Z',
        '',
      ],
    ]);
  });

  it('streams many rows in ~64 KB chunks', async () => {
    const stream = batchCsv(syntheticRows(5000));
    const sizes: number[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) sizes.push(chunk.length);
    expect(sizes.length).toBeGreaterThan(5);
    expect(Math.max(...sizes)).toBeLessThan(70 * 1024);
    expect(sizes.slice(0, -1).every((size) => size >= 64 * 1024)).toBe(true);
  });

  it('has the header only for no rows, and fails with the source error', async () => {
    expect(await collect((async function* () {})())).toBe(csvLine(DEVICE_CSV_COLUMNS));
    const failing = (async function* () {
      yield syntheticRow(0);
      throw new Error('cursor lost');
    })();
    await expect(collect(failing)).rejects.toThrow('cursor lost');
  });
});
