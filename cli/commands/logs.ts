/**
 * `edgeml logs SERVICE --device ID` and `edgeml logs --device ID --agent`: a service's (every
 * replica's) or the agent's output, read from the device through the hub; `--follow` streams new
 * lines until Ctrl-C (which ends the session on the device too). `edgeml logs SERVICE --shipped`:
 * the error lines devices shipped with their telemetry (`--ship-logs error`), from the hub alone.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { SHIPPED_LOGS_LIMIT, type DeviceLogEnd, type DeviceLogLine } from '../../shared/api/logs.js';
import { DEFAULT_SINCE } from '../../shared/api/telemetry.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { OperationInput } from '../../client/operations.js';
import { inputError, parseDeviceId } from '../args.js';
import { clientAction, withClientOptions, type CliIo, type ClientContext } from './client-command.js';
import { parseService } from './deployments.js';
import { parseTimeBoundFlag } from './telemetry.js';

interface LogsFlags {
  device?: string;
  agent?: boolean;
  shipped?: boolean;
  follow?: boolean;
  since?: string;
  tail?: number;
}

function parseTail(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 100_000) throw inputError(`--tail ${JSON.stringify(text)}: a whole number of lines, 0–100000`);
  return Number(text);
}

/** `iris[2] | text` for stdout, `iris[2] ! text` for stderr; `agent | …` for the agent. */
export function formatLogLine(l: DeviceLogLine): string {
  return `${l.source}${l.replica === undefined ? '' : `[${l.replica}]`} ${l.stream === 'stderr' ? '!' : '|'} ${l.line}`;
}

export function addLogsCommand(program: Command, io: CliIo): void {
  withClientOptions(
    program
      .command('logs')
      .description("a service's output on a device (every replica), or the agent's (--agent), read through the hub")
      .argument('[service]', 'service name', parseService)
      .option('--device <id>', 'the device to read from', parseDeviceId('--device'))
      .option('--agent', "the agent's own output instead of a service's")
      .option('--shipped', 'the error lines devices shipped with their telemetry (deploy --ship-logs error), kept by the hub; --device narrows, --since (default 1h) and --tail (default 500, at most 5000) bound')
      .option('-f, --follow', 'keep printing new lines (Ctrl-C ends; at most 10 minutes and 1 MiB)')
      .option('--since <when>', 'only lines from then on: a duration back from now (10m) or a date-time', parseTimeBoundFlag('--since'))
      .option('--tail <n>', 'only the last N lines (per replica) before following (default 1000)', parseTail),
  ).action(
    clientAction(io, async (ctx, [service]: [string | undefined], flags: LogsFlags & { json?: boolean }) => {
      if (flags.shipped) {
        if (service === undefined || flags.agent || flags.follow) throw inputError('--shipped reads one SERVICE (not --agent, not --follow)');
        await printShippedLogs(ctx, service, flags);
        return;
      }
      if (flags.device === undefined) throw inputError('--device ID is required: which device to read the logs of');
      if ((service === undefined) === (flags.agent !== true)) throw inputError('name a SERVICE, or --agent for the agent itself (not both)');
      const query = { ...(service === undefined ? { agent: true } : { service }), follow: flags.follow || undefined, since: flags.since, tail: flags.tail };
      await printDeviceLogs(ctx, flags.device, query, flags.json === true);
    }),
  );
}

async function printShippedLogs(ctx: ClientContext, service: string, flags: LogsFlags): Promise<void> {
  if (flags.tail !== undefined && (flags.tail < 1 || flags.tail > SHIPPED_LOGS_LIMIT.maximum)) throw inputError(`--tail with --shipped: 1–${SHIPPED_LOGS_LIMIT.maximum} lines`);
  const query = { since: flags.since ?? DEFAULT_SINCE, limit: flags.tail ?? SHIPPED_LOGS_LIMIT.default, ...(flags.device === undefined ? {} : { device: flags.device }) };
  const answer = await ctx.client.call('listShippedLogs', { params: { service }, query });
  ctx.out.result(answer, () =>
    [
      ...answer.lines.map((l) => `${l.ts} ${l.device} ${formatLogLine({ ts: l.ts, source: service, replica: l.replica, stream: l.stream, line: l.line })}`),
      ...(answer.dropped > 0 ? [`(${answer.dropped} more error line(s) left out by the devices' rate limit)`] : []),
      ...(answer.lines.length === 0 && answer.dropped === 0 ? [`no error lines shipped for ${service} in the window (is it deployed with --ship-logs error?)`] : []),
    ].join('\n'),
  );
}

function parseEntry(text: string): DeviceLogLine | DeviceLogEnd {
  try {
    return JSON.parse(text) as DeviceLogLine | DeviceLogEnd;
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `the hub sent a line that is not JSON in the log stream (is the hub URL right, with no proxy rewriting answers?): ${JSON.stringify(text.slice(0, 80))}`, { cause: err });
  }
}

async function printDeviceLogs(ctx: ClientContext, device: string, query: OperationInput<'getDeviceLogs'>['query'], json: boolean): Promise<void> {
  const download = await ctx.client.call('getDeviceLogs', { params: { id: device }, query });
  let end: DeviceLogEnd['end'] | undefined;
  try {
    for await (const text of createInterface({ input: download.body, crlfDelay: Infinity })) {
      // Empty lines are the hub's heartbeats while a follow is quiet.
      if (text === '') continue;
      const entry = parseEntry(text);
      if ('end' in entry) end = entry.end;
      if (json) ctx.io.stdout.write(`${text}\n`);
      else if (!('end' in entry)) ctx.io.stdout.write(`${formatLogLine(entry)}\n`);
    }
  } catch (err) {
    // Ctrl-C during --follow is how a follow ends.
    if (ctx.signal.aborted) return;
    throw err;
  }
  if (!end) throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, 'the log stream broke off before its end');
  if (end.reason === 'device-offline') throw new EdgemlError(ErrorCodes.HUB_DEVICE_OFFLINE, end.message ?? `device ${device} went offline`);
  if (end.reason === 'error') throw new EdgemlError(ErrorCodes.INTERNAL, `reading the logs failed on the device: ${end.message ?? 'no reason given'}`);
  if (end.reason !== 'done' && !json) ctx.io.stderr.write(`logs ended (${end.reason}): ${end.message ?? ''}\n`);
}
