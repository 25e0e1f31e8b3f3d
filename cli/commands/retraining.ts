/**
 * `edgeml retrain create|list|show|run|logs|cancel`: retraining jobs on the hub. A run's log is
 * followed like a build log; `run --follow` waits for the run and exits 1 unless it promoted or
 * rejected the candidate (a rejection is a run that worked).
 */
import { once } from 'node:events';
import type { Command } from 'commander';
import { EVAL_METRIC_NAMES, type RetrainingJob, type RetrainingJobCreate, type RetrainingRun } from '../../shared/api/retraining.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { inputError } from '../args.js';
import { renderFields, renderTable } from '../output.js';
import { addClientOptions, clientAction, type CliIo, type ClientContext } from './client-command.js';
import { addRolloutOptions, rolloutRequest, type RolloutFlags } from './rollout-options.js';

interface CreateFlags extends RolloutFlags {
  service: string;
  trainer: string;
  dataset?: string[];
  schedule?: string;
  minNewLabels?: number;
  evalMetric?: RetrainingJobCreate['evalMetric'];
  evalOutput?: string;
  evalFraction?: number;
  minImprovement?: number;
  params?: Record<string, unknown>;
  model?: string;
  timeout?: string;
  memory?: string;
  cpus?: number;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function number(flag: string, check: (n: number) => boolean, expected: string) {
  return (text: string) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || !check(n)) throw inputError(`${flag} ${JSON.stringify(text)}: expected ${expected}`);
    return n;
  };
}

function parseParams(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw inputError(`--params: not JSON: ${(err as Error).message}`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError('--params: expected a JSON object, e.g. {"epochs": 10}');
  return value as Record<string, unknown>;
}

function parseMetric(text: string): RetrainingJobCreate['evalMetric'] {
  if (!(EVAL_METRIC_NAMES as readonly string[]).includes(text)) throw inputError(`--eval-metric ${JSON.stringify(text)}: expected one of ${EVAL_METRIC_NAMES.join(', ')}`);
  return text as RetrainingJobCreate['evalMetric'];
}

function parseRunId(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw inputError(`run ${JSON.stringify(text)}: expected a run id, a whole number ≥ 1`);
  return Number(text);
}

function evaluationText(run: RetrainingRun): string | undefined {
  const e = run.evaluation;
  const rows = e && (e.compared === e.rows ? `${e.rows} rows` : `the ${e.compared} of ${e.rows} rows both answered`);
  return e ? `${e.metric}: current ${e.current}, candidate ${e.candidate} (on ${rows}${e.minImprovement > 0 ? `, min improvement ${e.minImprovement}` : ''})` : undefined;
}

export function renderRun(run: RetrainingRun): string {
  return renderFields([
    ['run', `${run.id} (${run.trigger})`],
    ['job', run.job],
    ['service', run.service],
    ['status', run.stage ? `${run.status} (${run.stage})` : run.status],
    ['reason', run.reason ?? undefined],
    ['rows', run.rows ? `${run.rows.labels} labelled; ${run.rows.train} train, ${run.rows.eval} eval` : undefined],
    ['current', run.current ? `${run.current.name}:${run.current.version}` : undefined],
    ['candidate', run.candidate ? `${run.candidate.name}:${run.candidate.version}` : undefined],
    ['image', run.image === null ? undefined : String(run.image)],
    ['evaluation', evaluationText(run)],
    ['rollout', run.rollout === null ? undefined : String(run.rollout)],
    ['created', run.createdAt],
    ['finished', run.finishedAt ?? undefined],
  ]);
}

function renderJob(job: RetrainingJob, runs: RetrainingRun[]): string {
  const fields = renderFields([
    ['job', job.name],
    ['service', job.service],
    ['trainer', job.trainer],
    ['datasets', job.datasets.join(', ') || undefined],
    ['triggers', [job.schedule && `schedule "${job.schedule}"`, job.minNewLabels !== null && `${job.minNewLabels} new labels (counted since ${job.labelsSince})`, 'by hand'].filter(Boolean).join(', ')],
    ['evaluation', `${job.evalMetric} of ${job.evalOutput || 'the whole answer'}, eval fraction ${job.evalFraction}, min improvement ${job.minImprovement}`],
    ['limits', `timeout ${job.timeout}, memory ${job.memory}, cpus ${job.cpus}`],
    ['rollout', job.rollout ? JSON.stringify(job.rollout) : 'all-at-once'],
  ]);
  const table = renderTable(
    ['RUN', 'TRIGGER', 'STATUS', 'CANDIDATE', 'EVALUATION', 'CREATED'],
    runs.map((r) => [String(r.id), r.trigger, r.stage ? `${r.status} (${r.stage})` : r.status, r.candidate ? `${r.candidate.name}:${r.candidate.version}` : '-', evaluationText(r) ?? '-', r.createdAt]),
    '(no runs)',
  );
  return `${fields}\n\n${table}`;
}

/** The run asked for (it must be one of the job's: run ids are the hub's, not the job's), or the job's last one. */
async function runOf(ctx: ClientContext, job: string, id: number | undefined): Promise<RetrainingRun> {
  if (id !== undefined) {
    const run = await ctx.client.call('getRetrainingRun', { params: { id } });
    if (run.job !== job) throw new EdgemlError(ErrorCodes.HUB_RETRAINING_RUN_NOT_FOUND, `run ${id} is a run of job ${run.job}, not of ${job}: see edgeml retrain show ${run.job} ${id}`);
    return run;
  }
  const last = (await ctx.client.call('getRetrainingJob', { params: { name: job } })).lastRun;
  if (!last) throw new EdgemlError(ErrorCodes.HUB_RETRAINING_RUN_NOT_FOUND, `retraining job ${job} has no runs yet: start one with edgeml retrain run ${job}`);
  return last;
}

async function printLog(ctx: ClientContext, id: number, follow: boolean, out: NodeJS.WritableStream): Promise<void> {
  const log = await ctx.client.call('getRetrainingRunLog', { params: { id }, query: { follow: follow || undefined } });
  for await (const chunk of log.body) if (!out.write(chunk as Buffer)) await once(out, 'drain', { signal: ctx.signal });
}

const RUN_WORKED: readonly RetrainingRun['status'][] = ['promoted', 'rejected'];

export function addRetrainingCommands(program: Command, io: CliIo): void {
  const retrain = program.command('retrain').description('retraining jobs: feedback → train → evaluate → promote with a gated rollout');

  addRolloutOptions(
    retrain
      .command('create')
      .description('create a retraining job for a deployed service')
      .argument('<job>', 'job name')
      .requiredOption('--service <name>', 'the deployed service whose labelled data it trains on and which it updates')
      .requiredOption('--trainer <name[:version]>', 'the trainer (edgeml trainer create); without a version, its latest')
      .option('--dataset <name:version>', 'a base dataset trained on with the feedback (repeat for several)', collect)
      .option('--schedule <cron>', 'a run at each match of this cron expression, e.g. "0 3 * * *"')
      .option('--min-new-labels <n>', 'a run once this many labels arrived since the last run', number('--min-new-labels', (n) => Number.isInteger(n) && n >= 1, 'a whole number ≥ 1'))
      .option('--eval-metric <metric>', `${EVAL_METRIC_NAMES.join(' | ')} (default accuracy)`, parseMetric)
      .option('--eval-output <json-pointer>', "the answer's field compared with the label, e.g. /y (default: the whole answer)")
      .option('--eval-fraction <f>', 'share of the rows held out for evaluation, by a stable hash of the request id (default 0.2)', number('--eval-fraction', (n) => n > 0 && n < 1, 'a number between 0 and 1'))
      .option('--min-improvement <x>', 'how much better the candidate must score to be promoted (default 0: any improvement)', number('--min-improvement', (n) => n >= 0, 'a number ≥ 0'))
      .option('--params <json>', 'a JSON object given to the trainer as EDGEML_PARAMS', parseParams)
      .option('--model <name>', 'the model to retrain, when the service runs several')
      .option('--timeout <duration>', 'training time limit (default 30m)')
      .option('--memory <size>', 'training memory limit (default 1g)')
      .option('--cpus <n>', 'training CPU limit (default 1)', number('--cpus', (n) => n > 0, 'a number > 0')),
  ).action(
    clientAction<[string], CreateFlags>(io, async (ctx, [name], flags) => {
      const body: RetrainingJobCreate = {
        name,
        service: flags.service,
        trainer: flags.trainer,
        datasets: flags.dataset,
        schedule: flags.schedule,
        minNewLabels: flags.minNewLabels,
        evalMetric: flags.evalMetric,
        evalOutput: flags.evalOutput,
        evalFraction: flags.evalFraction,
        minImprovement: flags.minImprovement,
        params: flags.params,
        model: flags.model,
        timeout: flags.timeout,
        memory: flags.memory,
        cpus: flags.cpus,
        rollout: rolloutRequest(flags),
      };
      const job = await ctx.client.call('createRetrainingJob', { body });
      ctx.out.result(job, () => `retraining job ${job.name} created for service ${job.service}\n\n${renderJob(job, [])}`);
    }),
  );

  retrain
    .command('list')
    .description('retraining jobs and their last runs')
    .action(
      clientAction<[], object>(io, async (ctx) => {
        const { jobs } = await ctx.client.call('listRetrainingJobs');
        ctx.out.result({ jobs }, () =>
          renderTable(
            ['JOB', 'SERVICE', 'TRAINER', 'TRIGGERS', 'LAST RUN', 'STATUS'],
            jobs.map((j) => [j.name, j.service, j.trainer, [j.schedule && `cron ${j.schedule}`, j.minNewLabels !== null && `${j.minNewLabels} labels`].filter(Boolean).join(', ') || 'by hand', j.lastRun ? String(j.lastRun.id) : '-', j.lastRun?.status ?? '-']),
            '(no retraining jobs)',
          ),
        );
      }),
    );

  retrain
    .command('show')
    .description("a job and its runs, or one run (status, stage, evaluation, candidate, rollout)")
    .argument('<job>', 'job name')
    .argument('[run]', 'run id', parseRunId)
    .action(
      clientAction<[string, number | undefined], object>(io, async (ctx, [name, id]) => {
        if (id !== undefined) {
          const run = await runOf(ctx, name, id);
          return ctx.out.result(run, () => renderRun(run));
        }
        const job = await ctx.client.call('getRetrainingJob', { params: { name } });
        const { runs } = await ctx.client.call('listRetrainingJobRuns', { params: { name } });
        ctx.out.result({ ...job, runs }, () => renderJob(job, runs));
      }),
    );

  retrain
    .command('run')
    .description('start a run now; with --follow, stream its log and exit 1 unless it promoted or rejected the candidate')
    .argument('<job>', 'job name')
    .option('--follow', "stream the run's log until it ends")
    .action(
      clientAction<[string], { follow?: boolean }>(io, async (ctx, [name], flags) => {
        const queued = await ctx.client.call('startRetrainingRun', { params: { name } });
        if (!flags.follow) return ctx.out.result(queued, () => `run ${queued.id} of job ${name} queued: follow it with edgeml retrain logs ${name} ${queued.id} --follow`);
        await printLog(ctx, queued.id, true, ctx.out.json ? ctx.io.stderr : ctx.io.stdout);
        const run = await ctx.client.call('getRetrainingRun', { params: { id: queued.id } });
        ctx.out.result(run, () => `\n${renderRun(run)}`);
        if (!RUN_WORKED.includes(run.status)) throw new EdgemlError(ErrorCodes.HUB_RETRAINING_FAILED, `run ${run.id} ended ${run.status}${run.reason ? `: ${run.reason}` : ''}`);
      }),
    );

  retrain
    .command('logs')
    .description("a run's log (default: the job's last run)")
    .argument('<job>', 'job name')
    .argument('[run]', 'run id', parseRunId)
    .option('--follow', 'keep streaming until the run ends')
    .action(
      clientAction<[string, number | undefined], { follow?: boolean }>(io, async (ctx, [name, id], flags) => {
        const run = await runOf(ctx, name, id);
        await printLog(ctx, run.id, flags.follow === true, ctx.io.stdout);
      }),
    );

  retrain
    .command('cancel')
    .description("cancel a queued or running run (default: the job's last run)")
    .argument('<job>', 'job name')
    .argument('[run]', 'run id', parseRunId)
    .action(
      clientAction<[string, number | undefined], object>(io, async (ctx, [name, id]) => {
        const run = await ctx.client.call('cancelRetrainingRun', { params: { id: (await runOf(ctx, name, id)).id } });
        ctx.out.result(run, () => (run.status === 'running' ? `run ${run.id} of job ${run.job}: cancel requested; still running (${run.stage ?? 'starting'}), it ends cancelled once that step stops` : `run ${run.id} of job ${run.job}: ${run.status}`));
      }),
    );

  addClientOptions(retrain);
}
