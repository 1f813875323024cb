// Reading devices.csv back (files/csv.ts writes it): RFC 4180 records, quoted fields with ""
// escapes and line breaks inside, CRLF or LF, an optional UTF-8 BOM.
import { unguardFormulas } from '../files/csv';

/** Every record of a CSV text, fields as written (quotes removed, nothing else changed). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let fieldStarted = false; // tells an empty last line apart from a record of one empty field
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\r' || c === '\n') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      if (fieldStarted || field !== '' || row.length > 0) {
        row.push(field);
        rows.push(row);
      }
      row = [];
      field = '';
      fieldStarted = false;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new Error('CSV: a quoted field is not closed');
  if (fieldStarted || field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** files/csv.ts puts an apostrophe where a spreadsheet would start a formula; this takes it away again. */
export const unguardFormula = unguardFormulas;

/** Records as objects keyed by the header's column names, formula guards removed. */
export function csvObjects(text: string): { columns: string[]; rows: Record<string, string>[] } {
  const records = parseCsv(text);
  const columns = (records[0] ?? []).map((c) => c.trim());
  if (columns.length === 0) throw new Error('CSV: no header');
  const rows = records.slice(1).map((values, n) => {
    if (values.length !== columns.length) throw new Error(`CSV: record ${n + 1} has ${values.length} fields, the header ${columns.length}`);
    const row: Record<string, string> = {};
    columns.forEach((c, j) => (row[c] = unguardFormula(values[j]!)));
    return row;
  });
  return { columns, rows };
}
