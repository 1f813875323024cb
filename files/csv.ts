// devices.csv: RFC 4180 text, streamed so a batch of any size never sits in memory whole.
import { Readable } from 'node:stream';
import { DEVICE_CSV_COLUMNS, deviceCsvValues, type DeviceExportRow } from './device-export';

/** Lines are gathered into chunks of about this size: one push per row would dominate the cost. */
const CHUNK_CHARS = 64 * 1024;

// Spreadsheets (Excel, LibreOffice, Google Sheets) evaluate a cell that starts with one of these
// as a formula (or a DDE call), so a crafted `info` such as `=HYPERLINK(...)` would run when the
// factory opens the file (OWASP "CSV injection"). A cell is not only a whole field: a spreadsheet
// set to another separator (`;` in most of Europe, tab) or trimming spaces splits or strips a
// field differently, so `note;=1+2` or ` =1` is a formula there. Every place where a cell can
// begin (the field's start, after , ; tab or a line break), followed by blanks or quotes and a
// trigger (ASCII or full-width), gets an apostrophe, which makes a spreadsheet show the text as
// typed. Apostrophes already there count as part of the lead, so the guard can be undone exactly
// (unguardFormulas): IDs, secrets, URLs and dates never begin a cell with a trigger and pass as is.
const TRIGGERS = '=+\\-@|\uFF1D\uFF0B\uFF0D\uFF20\uFF5C';
const CELL_START = '(?<=^|[,;\\t\\r\\n])';
const LEAD = `'*[ "\\v\\f\\u00A0\\u3000]*[${TRIGGERS}]`;
const UNGUARDED = new RegExp(`${CELL_START}(?=${LEAD})`, 'g');
const GUARDED = new RegExp(`${CELL_START}'(?=${LEAD})`, 'g');

/** The text with an apostrophe where a spreadsheet, in any common locale, would start a formula. */
export function guardFormulas(text: string): string {
  return text.replace(UNGUARDED, "'");
}

/** The exact inverse of guardFormulas (the reference firmware reads devices.csv with it). */
export function unguardFormulas(text: string): string {
  return text.replace(GUARDED, '');
}

/**
 * One CSV field: numbers as is, null/undefined empty, text guarded against formulas and always
 * quoted (a quoted field is one cell in every reader, whatever separator characters it holds).
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  return `"${guardFormulas(value).replace(/"/g, '""')}"`;
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
