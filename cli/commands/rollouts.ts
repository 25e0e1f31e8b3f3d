/**
 * `edgeml rollout list|status|pause|resume|abort`: watch a rollout move devices batch by batch,
 * and steer it. `status --watch` redraws until the rollout is over and exits 1 if it did not
 * succeed, so CI can wait on it.
 */
import type { Command } from 'commander';
import type { Rollout, RolloutGate, RolloutList } from '../../shared/api/rollouts.js';
import { ACTIVE_ROLLOUT_PHASES, ROLLOUT_DEVICE_PHASES } from '../../shared/api/rollouts.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { inputError } from '../args.js';
import { renderFields, renderTable } from '../output.js';
import { parseService } from './deployments.js';
import { showList, withWatchOptions, type WatchFlags } from '../watch.js';
import { addClientOptions, clientAction, type CliIo, type ClientContext } from './client-command.js';
import { pollInterval } from './images.js';

function parseRolloutId(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw inputError(`rollout ${JSON.stringify(text)}: expected a rollout id, a whole number ≥ 1`);
  return Number(text);
}

const BAR_WIDTH = 30;

export function progressBar(progress: number): string {
  const filled = Math.round(progress * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${Math.round(progress * 100)}%`;
}

function countsLine(r: Pick<Rollout, 'counts'>): string {
  return ROLLOUT_DEVICE_PHASES.filter((p) => (r.counts[p] ?? 0) > 0)
    .map((p) => `${p} ${r.counts[p]}`)
    .join(', ') || 'no devices';
}

function batchText(r: Pick<Rollout, 'batch' | 'batches' | 'soakUntil'>): string {
  if (r.batches === 0) return '-';
  const at = Math.min(r.batch + 1, r.batches);
  return `${at}/${r.batches}${r.soakUntil ? ` (soaking until ${r.soakUntil})` : ''}`;
}

/** A gate's value in its own unit: error rate in %, latencies in ms, ratios and metrics as numbers. */
function gateValue(g: RolloutGate, value: number | null): string {
  if (value === null) return '-';
  if (g.name === 'error-rate') return `${(value * 100).toFixed(1)}%`;
  if (g.name === 'p95') return `${Math.round(value)}ms`;
  return String(Number(value.toPrecision(4)));
}

/** The old revision's p95, and how many requests it is from (too few: no baseline yet). */
function oldRevision(g: RolloutGate): string {
  const from = g.baselineRequests === undefined ? '' : ` (${g.baselineRequests} requests)`;
  if (g.baseline === null) return from ? `-${from}` : '-';
  return `${Math.round(g.baseline)}ms${from}`;
}

/** Requests the value is from; for the metric, answers that had no usable value besides. */
function requests(g: RolloutGate): string {
  return g.misses ? `${g.requests} (+${g.misses} unusable)` : String(g.requests);
}

export function renderGates(gates: readonly RolloutGate[]): string {
  return renderTable(
    ['GATE', 'THRESHOLD', 'VALUE', 'OLD REVISION', 'REQUESTS', 'RESULT', 'BATCH', 'CHECKED'],
    gates.map((g) => [g.name, g.threshold, gateValue(g, g.value), oldRevision(g), requests(g), g.ok === null ? 'waiting' : g.ok ? 'ok' : 'failed', String(g.batch + 1), g.checkedAt]),
    '(no figures yet)',
  );
}

export function renderRollout(r: Rollout): string {
  const fields = renderFields([
    ['rollout', `${r.id} (${r.kind})`],
    ['service', r.service],
    ['revision', `${r.fromRevision ?? '-'} → ${r.revision ?? '-'}`],
    ['strategy', `${r.strategy}${r.strategy === 'all-at-once' ? '' : `, batch ${r.options.batchSize}${r.strategy === 'canary' ? `, canary ${r.options.canary}` : ''}, soak ${r.options.soak}`}, max failures ${r.options.maxFailures}, device timeout ${r.options.deviceTimeout}`],
    ['gates', r.options.gates ? gatesText(r.options.gates) : undefined],
    ['phase', r.phase],
    ['reason', r.reason ?? undefined],
    ['batch', batchText(r)],
    ['devices', countsLine(r)],
    ['progress', progressBar(r.progress)],
    ['rollback', r.rolledBackBy ? `rollout ${r.rolledBackBy}` : r.rollbackOf ? `of rollout ${r.rollbackOf}` : undefined],
    ['started', r.createdAt],
    ['finished', r.finishedAt ?? undefined],
  ]);
  const table = renderTable(
    ['DEVICE', 'BATCH', 'PHASE', 'FROM', 'ERROR'],
    r.devices.map((d) => [d.id, String(d.batch + 1), d.phase, d.previousRevision === null ? '-' : String(d.previousRevision), d.error ?? '']),
    '(no devices)',
  );
  return `${fields}\n\n${r.options.gates ? `${renderGates(r.gates ?? [])}\n\n` : ''}${table}`;
}

function gatesText(g: NonNullable<Rollout['options']['gates']>): string {
  const parts = [
    g.errorRate && `error rate ≤ ${g.errorRate}`,
    g.p95 && `p95 ≤ ${g.p95}`,
    g.p95Ratio !== undefined && `p95 ≤ ${g.p95Ratio}× old revision`,
    g.metric && `${g.metric}${g.metricOutput ? ` at ${g.metricOutput}` : ''}`,
    g.minRequests !== undefined && `min ${g.minRequests} requests`,
  ];
  return parts.filter(Boolean).join(', ');
}

export function renderRolloutList(list: RolloutList['rollouts']): string {
  return renderTable(
    ['ID', 'SERVICE', 'KIND', 'REVISION', 'STRATEGY', 'PHASE', 'PROGRESS', 'STARTED'],
    list.map((r) => [String(r.id), r.service, r.kind, `${r.fromRevision ?? '-'} → ${r.revision ?? '-'}`, r.strategy, r.phase, `${Math.round(r.progress * 100)}%`, r.createdAt]),
    '(no rollouts)',
  );
}

const NAMED = 10;

/** Why a finished rollout is not a success, naming its failed devices; null when it succeeded. */
export function rolloutFailure(r: Rollout): string | null {
  if (r.phase === 'succeeded') return null;
  if (r.phase !== 'completed-with-failures') return `rollout ${r.id} ended ${r.phase}${r.reason ? `: ${r.reason}` : ''}`;
  const failed = r.devices.filter((d) => d.phase === 'failed');
  return [
    `rollout ${r.id} completed with failures: ${failed.length} of ${r.devices.length} devices failed`,
    ...failed.slice(0, NAMED).map((d) => `  ${d.id}: ${d.error ?? 'failed'}`),
    ...(failed.length > NAMED ? [`  … and ${failed.length - NAMED} more (edgeml rollout status ${r.id})`] : []),
  ].join('\n');
}

async function watch(ctx: ClientContext, id: number): Promise<Rollout> {
  const interval = pollInterval(ctx.io.env);
  let last = '';
  for (;;) {
    const r = await ctx.client.call('getRollout', { params: { id } });
    if (!ctx.out.json) {
      const line = `rollout ${r.id} ${r.phase} batch ${batchText(r)} ${progressBar(r.progress)} ${countsLine(r)}`;
      if (line !== last) ctx.io.stderr.write(`${line}\n`);
      last = line;
    }
    if (!ACTIVE_ROLLOUT_PHASES.includes(r.phase)) return r;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, interval);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new EdgemlError(ErrorCodes.CLI_INTERRUPTED, `stopped watching rollout ${id}; it goes on (edgeml rollout status ${id})`));
      }, { once: true });
    });
  }
}

export function addRolloutCommands(program: Command, io: CliIo): void {
  const rollout = program.command('rollout').description('rollouts: how a deployment change reaches its devices');
  withWatchOptions(
    rollout
      .command('list')
      .description('rollouts, newest first (the history of every service)')
      .option('--service <name>', 'only this service', parseService)
      .option('--active', 'only running or paused rollouts'),
  ).action(
    clientAction<[], { service?: string; active?: boolean } & WatchFlags>(io, async (ctx, _args, flags) => {
      const query = { service: flags.service, active: flags.active || undefined };
      await showList(ctx, flags, 'edgeml rollout list', () => ctx.client.call('listRollouts', { query }), (list) => renderRolloutList(list.rollouts));
    }),
  );
  rollout
    .command('status')
    .description('phase, batch, devices per phase and each device; --watch follows it to the end')
    .argument('<id>', 'rollout id', parseRolloutId)
    .option('--watch', 'poll until the rollout is over; exit 1 unless it succeeded (completed-with-failures, aborted, superseded)')
    .action(
      clientAction<[number], { watch?: boolean }>(io, async (ctx, [id], flags) => {
        const r = flags.watch ? await watch(ctx, id) : await ctx.client.call('getRollout', { params: { id } });
        ctx.out.result(r, () => renderRollout(r));
        const failure = flags.watch ? rolloutFailure(r) : null;
        if (failure) throw new EdgemlError(ErrorCodes.CLI_ROLLOUT_FAILED, failure);
      }),
    );
  for (const [name, operation, description] of [
    ['pause', 'pauseRollout', 'pause: devices already moving finish; no new device is moved'],
    ['resume', 'resumeRollout', 'resume a paused rollout'],
    ['abort', 'abortRollout', 'abort and roll back every device the rollout moved'],
  ] as const) {
    rollout
      .command(name)
      .description(description)
      .argument('<id>', 'rollout id', parseRolloutId)
      .action(
        clientAction<[number], object>(io, async (ctx, [id]) => {
          const r = await ctx.client.call(operation, { params: { id } });
          ctx.out.result(r, () => renderRollout(r));
        }),
      );
  }
  addClientOptions(rollout);
}
