// One `npm start` per data directory: a second one would fight the first over the embedded
// database's files and ports.
import fs from 'node:fs';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquirePidLock(file: string): void {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid && alive(pid)) {
      process.stderr.write(`DATA_DIR: another instance (pid ${pid}) is already running with ${file}; stop it first or set another DATA_DIR\n`);
      process.exit(78);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(file, String(process.pid));
  process.on('exit', () => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
    } catch {
      // already gone
    }
  });
}
