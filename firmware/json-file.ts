// A device's small JSON files (its memory, its OTA record): read as "nothing" when missing or
// corrupt (a corrupt file is a factory reset, not a device that cannot boot), written whole to a
// temporary file renamed into place, so a power cut never leaves half a file.
import fs from 'node:fs';
import path from 'node:path';

/** The parsed file, or null when it does not exist or is not JSON. Other read errors throw. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function writeJsonFile(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}
