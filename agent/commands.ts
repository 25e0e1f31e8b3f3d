/**
 * One-shot commands from the hub (`cmd` → `cmd/ack`). Each answers with a result or an error; an
 * unknown or failing command never takes the agent down.
 */
import type { Command, CommandAck } from '../shared/protocol.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { ErrorCodes } from '../shared/errors.js';

export interface CommandContext {
  uptimeMs(): number;
  invalidMessages(): number;
  generation(): number | null;
  /** `logs.*` (agent/logs/log-sessions.ts); absent where nothing can stream logs (the fleet simulator). */
  logs?: { command(cmd: Command): CommandAck };
}

export function runCommand(cmd: Command, ctx: CommandContext): CommandAck {
  switch (cmd.name) {
    case 'ping':
      return {
        v: PROTOCOL_VERSION,
        id: cmd.id,
        ok: true,
        result: { uptimeMs: ctx.uptimeMs(), invalidMessages: ctx.invalidMessages(), generation: ctx.generation() },
      };
    case 'logs.start':
    case 'logs.keepalive':
    case 'logs.stop':
      return ctx.logs?.command(cmd) ?? { v: PROTOCOL_VERSION, id: cmd.id, ok: false, error: { code: ErrorCodes.INTERNAL, message: 'this agent streams no logs' } };
  }
}
