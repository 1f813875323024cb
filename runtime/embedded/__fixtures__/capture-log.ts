// Shared by the embedded services' tests: a logger that records what it was told.
import type { EmbeddedLog } from '../managed-process';

export interface CapturedLog extends EmbeddedLog {
  messages: { level: string; msg: string; obj: unknown }[];
  has(level: string, pattern: RegExp): boolean;
}

export function captureLog(echo = process.env.TEST_LOG_LEVEL === 'debug'): CapturedLog {
  const messages: CapturedLog['messages'] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => {
    const text = typeof obj === 'string' ? obj : (msg ?? '');
    messages.push({ level, msg: text, obj });
    if (echo) process.stderr.write(`[${level}] ${text} ${typeof obj === 'object' ? JSON.stringify(obj) : ''}\n`);
  };
  return {
    messages,
    has: (level, pattern) => messages.some((m) => m.level === level && pattern.test(m.msg)),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  } as CapturedLog;
}
