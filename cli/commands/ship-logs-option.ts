/**
 * `deploy --ship-logs error|off` and `service update --ship-logs error|off`: whether devices send
 * the error lines of the service's containers with their telemetry (read with `logs --shipped`).
 */
import { SHIP_LOGS, type ShipLogs } from '../../shared/protocol.js';
import { inputError } from '../args.js';

export interface ShipLogsFlags {
  shipLogs?: ShipLogs;
}

function parseShipLogs(text: string): ShipLogs {
  if (!(SHIP_LOGS as readonly string[]).includes(text)) throw inputError(`--ship-logs ${JSON.stringify(text)}: expected ${SHIP_LOGS.join(' or ')}`);
  return text as ShipLogs;
}

export const SHIP_LOGS_OPTION = [
  '--ship-logs <mode>',
  'error: devices send the error lines of its containers (stderr, JSON level error and above) with their telemetry, rate-limited (edgeml logs SERVICE --shipped); off: none (the default). No new revision, no restart',
  parseShipLogs,
] as const;

/** Only when given: the hub keeps (or, for a new deployment, defaults to off) the rest. */
export function shipLogsRequest(flags: ShipLogsFlags): { shipLogs?: ShipLogs } {
  return flags.shipLogs === undefined ? {} : { shipLogs: flags.shipLogs };
}
