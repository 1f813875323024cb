// Process life: a clean stop on SIGTERM/SIGINT, and a clear message instead of a stack trace.
import type { Logger } from './logger';

export function exitWith(log: Logger, message: string, code = 1): never {
  log.fatal(message);
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}
