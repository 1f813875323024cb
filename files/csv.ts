// devices.csv: RFC 4180 text, streamed so a batch of any size never sits in memory whole.
import { Readable } from 'node:stream';
import { DEVICE_CSV_COLUMNS, deviceCsvValues, type DeviceExportRow } from './device-export';

/** Lines are gathered into chunks of about this size: one push per row would dominate the cost. */
const CHUNK_CHARS = 64 * 1024;

// Spreadsheets (Excel, LibreOffice, Google Sheets) evaluate a cell that starts with one of these
// as a formula, so a crafted `info` such as `=HYPERLINK(...)` would run when the factory opens the
// file (OWASP "CSV injection"). A leading apostrophe makes them show the text as typed.
const FORMULA_TRIGGER = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV field: numbers as is, null/undefined empty, text guarded against formulas then quoted if needed. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA_TRIGGER.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, CRLF-terminated as RFC 4180 asks. */
export function csvLine(values: readonly (string | number | null | undefined)[]): string {
  return values.map(csvField).join(',') + '\r\n';
}

/** The header then one line per row, in UTF-8 chunks of ~64 KB. */
export async function* csvChunks(rows: AsyncIterable<DeviceExportRow>): AsyncGenerator<Buffer> {
  let pending = csvLine(DEVICE_CSV_COLUMNS);
  for await (const row of rows) {
    pending += csvLine(deviceCsvValues(row));
    if (pending.length >= CHUNK_CHARS) {
      yield Buffer.from(pending);
      pending = '';
    }
  }
  if (pending) yield Buffer.from(pending);
}

/**
 * devices.csv as a byte stream. Readable.from pulls the next chunk only when the consumer has
 * room, so a slow client slows the row source instead of filling memory.
 */
export function batchCsv(rows: AsyncIterable<DeviceExportRow>): Readable {
  return Readable.from(csvChunks(rows), { objectMode: false });
}
