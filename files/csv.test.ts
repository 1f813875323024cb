import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { batchCsv, csvField, csvLine, guardFormulas, unguardFormulas } from './csv';
import { DEVICE_CSV_COLUMNS, deviceCsvValues, type DeviceExportRow } from './device-export';
import { csvObjects } from '../firmware/csv-read';
import { provisioningRows } from '../firmware/provisioning';
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
  it('quotes every text field, leaves numbers bare and null/undefined empty', () => {
    expect(csvLine(['ABC', 42, -1.5, null, undefined, ''])).toBe('"ABC",42,-1.5,,,""\r\n');
  });

  it('doubles quotes inside fields and keeps commas and line breaks inside the quotes (RFC 4180)', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField('Grüße 😀')).toBe('"Grüße 😀"');
  });

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(csvField('=HYPERLINK("http://evil","x")')).toBe(`"'=HYPERLINK(""http://evil"",""x"")"`);
    expect(csvField('+1')).toBe(`"'+1"`);
    expect(csvField('-2+3')).toBe(`"'-2+3"`);
    expect(csvField('@SUM(A1)')).toBe(`"'@SUM(A1)"`);
    expect(csvField('\tcmd')).toBe(`"\tcmd"`); // a tab is a separator: what follows it is checked
    expect(csvField('\t=cmd')).toBe(`"\t'=cmd"`);
    // only where a cell can begin; numbers are data, not text
    expect(csvField('a=b')).toBe('"a=b"');
    expect(csvField(-5)).toBe('-5');
  });

  // What each would do unguarded: Excel with `;` as list separator (most of Europe) splits the
  // first; spreadsheets that trim blanks, or read a line break as a new row, see a formula in the
  // next ones; full-width signs are formulas in Japanese and Chinese locales; `|` starts DDE.
  it.each([
    ['note;=1+2', "note;'=1+2"],
    ['note,=1+2', "note,'=1+2"],
    ['note\t=1+2', "note\t'=1+2"],
    ['note; =1+2', "note;' =1+2"],
    [' =1+2', "' =1+2"],
    ['\n=1+2', "\n'=1+2"],
    ['\r\n+1', "\r\n'+1"],
    ['ok\r\n@SUM(1)', "ok\r\n'@SUM(1)"],
    ['\u00a0=1', "'\u00a0=1"],
    ['\u3000=1', "'\u3000=1"],
    ['"=1"', `'"=1"`],
    ['x;"=1"', `x;'"=1"`],
    ['＝1+2', "'＝1+2"],
    ['＋1', "'＋1"],
    ['－1', "'－1"],
    ['＠SUM(1)', "'＠SUM(1)"],
    ['|cmd', "'|cmd"],
    ["cmd|' /C calc'!A0;=1", "cmd|' /C calc'!A0;'=1"],
    ["'=1", "''=1"],
  ])('guards %j as %j', (value, guarded) => {
    expect(guardFormulas(value)).toBe(guarded);
    expect(unguardFormulas(guarded)).toBe(value);
  });

  it('leaves device IDs, secrets, QR payloads, URLs and dates alone', () => {
    const row = { ...syntheticRow(3), mqttUrl: 'mqtts://mqtt.example.com:8883/path?x=1' };
    const values = deviceCsvValues(row);
    for (const v of values) if (v !== null) expect(guardFormulas(v)).toBe(v);
  });
});

describe('a round trip through the reference firmware', () => {
  const tricky = [
    'note;=1+2', ' =1', '\n=1', '\t=1', '＝1', '|cmd', "'=x", "''=x", "it's", '-5 °C, "outdoor"', 'a;b,c\td', '=A1;=B1,+C1\t-D1\r\n@E1',
  ];

  it('reads back every field exactly, guards removed', async () => {
    const rows = tricky.map((info, i) => ({ ...syntheticRow(i), info, model: tricky[tricky.length - 1 - i]!, batchName: `run ${info}`, mqttUrl: 'mqtt://broker.example:1883' }));
    const { columns, rows: parsed } = csvObjects(await collect(syntheticFrom(rows)));
    expect(columns).toEqual([...DEVICE_CSV_COLUMNS]);
    expect(parsed).toHaveLength(rows.length);
    parsed.forEach((p, i) => {
      const expected = deviceCsvValues(rows[i]!);
      DEVICE_CSV_COLUMNS.forEach((c, j) => expect(p[c]).toBe(expected[j] ?? ''));
    });
    const device = provisioningRows(await collect(syntheticFrom(rows)))[4]!;
    expect(device).toEqual({ deviceId: rows[4]!.deviceId, mqttUsername: rows[4]!.deviceId.toLowerCase(), secret: rows[4]!.secret, mqttUrl: 'mqtt://broker.example:1883', pairingCode: rows[4]!.pairingCode, model: rows[4]!.model });
  });

  it('finds no cell a spreadsheet would evaluate, whatever the separator', async () => {
    const rows = tricky.map((info, i) => ({ ...syntheticRow(i), info }));
    const text = await collect(syntheticFrom(rows));
    // A spreadsheet reading the file with the wrong separator, or ignoring quotes, or trimming:
    // every piece between separators, blanks and quotes stripped, must not start with a trigger.
    for (const cell of text.split(/[,;\t\r\n]/)) expect(cell.replace(/^[\s"]+/, '')).not.toMatch(/^[=+\-@|＝＋－＠｜]/);
  });
});

async function* syntheticFrom(rows: DeviceExportRow[]): AsyncGenerator<DeviceExportRow> {
  yield* rows;
}

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
        row.deviceId.toLowerCase(),
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
