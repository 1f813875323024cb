// The diagnostic commands of `$rdm/cmd/<reqId>` (DIAGNOSTIC_COMMANDS): pure functions of what the
// device reports about itself, so they are testable without a broker. `reboot` only answers here;
// the device performs it after the answer is on its way.
import { DIAGNOSTIC_COMMANDS, type CommandMessage, type CommandResultMessage, type DiagnosticCommand, type LogMessage } from '../domain/device-messages';

export interface SelfTestCheck {
  check: string;
  ok: boolean;
  detail?: string;
}

export interface DiagnosticsHost {
  uptimeMs(): number;
  selfTest(): SelfTestCheck[];
  logs(lines: number): LogMessage[];
}

export const DEFAULT_LOG_LINES = 50;
export const MAX_LOG_LINES = 1_000;

export function isDiagnosticCommand(name: string): name is DiagnosticCommand {
  return (DIAGNOSTIC_COMMANDS as readonly string[]).includes(name);
}

/** The answer to a command; `reboot: true` tells the caller to reboot once the answer is sent. */
export function runDiagnostic(host: DiagnosticsHost, cmd: CommandMessage | null): { answer: CommandResultMessage; reboot: boolean } {
  if (!cmd) return { answer: { ok: false, error: 'malformed command: expected {"command": string, "args"?: object}' }, reboot: false };
  if (!isDiagnosticCommand(cmd.command)) return { answer: { ok: false, error: `unknown command "${cmd.command}" (known: ${DIAGNOSTIC_COMMANDS.join(', ')})` }, reboot: false };
  switch (cmd.command) {
    case 'ping':
      return { answer: { ok: true, result: { pong: true, uptimeMs: host.uptimeMs() } }, reboot: false };
    case 'self-test': {
      const checks = host.selfTest();
      const failed = checks.filter((c) => !c.ok);
      const answer: CommandResultMessage = { ok: failed.length === 0, result: { passed: failed.length === 0, checks } };
      if (failed.length) answer.error = `self-test failed: ${failed.map((c) => c.check).join(', ')}`;
      return { answer, reboot: false };
    }
    case 'read-logs': {
      const asked = cmd.args?.lines ?? DEFAULT_LOG_LINES;
      if (typeof asked !== 'number' || !Number.isSafeInteger(asked) || asked < 1 || asked > MAX_LOG_LINES) {
        return { answer: { ok: false, error: `args.lines must be an integer from 1 to ${MAX_LOG_LINES}` }, reboot: false };
      }
      return { answer: { ok: true, result: { lines: host.logs(asked) } }, reboot: false };
    }
    case 'reboot':
      return { answer: { ok: true, result: { rebooting: true } }, reboot: true };
  }
}
