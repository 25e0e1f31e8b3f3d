/**
 * `edgeml deploy` and `edgeml service …`: put a service on the devices a label selector matches,
 * change its image, limits, replicas or target, set its data capture, delete it, and look at
 * deployments. `deploy` prints the service API key once. `service update --model` swaps one model
 * of the service's manifest for another version, builds and rolls out in one command.
 */
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import {
  IMAGE_REF_PATTERN,
  memoryLimit,
  resolveScale,
  type Deployment,
  type DeploymentCreate,
  type ServiceUpdate,
} from '../../shared/api/deployments.js';
import { DEFAULT_SCALE, LIMIT_BOUNDS, SERVICE_NAME_PATTERN, type ServiceScale } from '../../shared/protocol.js';
import { formatBytes } from '../../shared/size.js';
import { DURATION_PATTERN } from '../../shared/duration.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { FINISHED_MODEL_UPDATE_STATUSES, type ModelUpdate, type ModelUpdateRequest } from '../../shared/api/model-updates.js';
import { formatModelRef, inputError, keyValueRecord, parseLabel, parseModelRef, repeatable, type KeyValue, type ModelRef } from '../args.js';
import { formatList, formatPairs, renderFields, renderTable, shortDigest } from '../output.js';
import { showList, withWatchOptions, type WatchFlags } from '../watch.js';
import { addClientOptions, clientAction, withClientOptions, type CliIo, type ClientContext } from './client-command.js';
import { outcomeError, renderFailedChecks } from './image-views.js';
import { parseImageId, pollInterval, waitForImage } from './images.js';
import { captureSettings, formatCapture, parseMaxBody, parseRate, parseRedact, type CaptureFlags } from './capture-options.js';
import { SHIP_LOGS_OPTION, shipLogsRequest, type ShipLogsFlags } from './ship-logs-option.js';
import { addRolloutOptions, rolloutRequest, type RolloutFlags } from './rollout-options.js';
import { fetchServiceReplicas, renderServiceReplicas } from './replica-views.js';
import { addGraceOption, renderRotated } from './rotation-output.js';

interface SourceFlags extends RolloutFlags {
  image?: string;
  build?: number;
}

/** Limits and replicas: `deploy` and `service update` take the same flags. */
interface SettingFlags {
  maxConcurrent?: number;
  maxQueue?: number;
  memory?: string;
  cpus?: number;
  replicas?: number;
  minReplicas?: number;
  maxReplicas?: number;
  targetUtilization?: number;
  scaleUpWindow?: string;
  scaleDownWindow?: string;
}

interface UpdateFlags extends SourceFlags, SettingFlags, ShipLogsFlags {
  target?: KeyValue[];
  model?: ModelRef;
}

interface DeployFlags extends SourceFlags, SettingFlags, ShipLogsFlags {
  target: KeyValue[];
  captureRate?: number;
  captureMaxBody?: number;
  captureRedact?: string[];
}

function parsePattern(label: string, pattern: string, example: string) {
  const re = new RegExp(pattern);
  return (text: string): string => {
    if (!re.test(text)) throw inputError(`${label} ${JSON.stringify(text)}: expected e.g. ${example}`);
    return text;
  };
}

function parseInteger(label: string, min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw inputError(`${label} ${JSON.stringify(text)}: expected a whole number ≥ ${min}`);
    return Number(text);
  };
}

/** The hub checks the same bounds; checking here saves the round trip. */
function parseMemory(text: string): string {
  const checked = memoryLimit(text, '--memory');
  if (!checked.ok) throw inputError(checked.error);
  return text;
}

function parseCpus(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) throw inputError(`--cpus ${JSON.stringify(text)}: expected a positive number, e.g. 0.5`);
  return n;
}

export const parseService = parsePattern('service', SERVICE_NAME_PATTERN, 'iris (lowercase letters, digits, -)');
const parseImageRef = parsePattern('--image', IMAGE_REF_PATTERN, '127.0.0.1:5000/edgeml/iris-scorer@sha256:… (pinned by digest; or use --build ID)');

function parseUtilization(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0 && n <= 1)) throw inputError(`--target-utilization ${JSON.stringify(text)}: expected a share above 0, at most 1, e.g. 0.7`);
  return n;
}

export function imageSource(flags: SourceFlags): ServiceUpdate {
  if ((flags.image === undefined) === (flags.build === undefined)) throw inputError('give exactly one of --image REF@sha256:… and --build ID');
  const rollout = rolloutRequest(flags);
  return { ...(flags.image !== undefined ? { image: flags.image } : { build: flags.build! }), ...(rollout ? { rollout } : {}) };
}

const SETTING_KEYS = ['maxConcurrent', 'maxQueue', 'memory', 'cpus', 'replicas', 'minReplicas', 'maxReplicas', 'targetUtilization', 'scaleUpWindow', 'scaleDownWindow'] as const;

/**
 * Only the flags given (the hub keeps or defaults the rest); the combinations the hub would refuse
 * are refused here, naming the flags. `base`: what the flags not given stand for (a new deployment's
 * defaults; for an update, anything, since the hub merges with what is stored).
 */
function settings(flags: SettingFlags, base: ServiceScale): Partial<Pick<ServiceUpdate, (typeof SETTING_KEYS)[number]>> {
  const given = Object.fromEntries(SETTING_KEYS.filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]));
  const checked = resolveScale(flags, base, '--');
  if (!checked.ok) throw inputError(checked.error);
  return given;
}

export function deployRequest(service: string, flags: DeployFlags): DeploymentCreate {
  return {
    service,
    ...imageSource(flags),
    target: keyValueRecord('--target', flags.target),
    ...settings(flags, DEFAULT_SCALE),
    ...deployCapture(flags),
    ...shipLogsRequest(flags),
  };
}

/** Any of a new image, limits and replicas, a new target; at least one. */
export function updateRequest(flags: UpdateFlags): ServiceUpdate {
  const newImage = flags.image !== undefined || flags.build !== undefined;
  const request: ServiceUpdate = {
    ...(newImage ? imageSource(flags) : {}),
    ...settings(flags, { ...DEFAULT_SCALE, minReplicas: 1, maxReplicas: LIMIT_BOUNDS.replicas.maximum }),
    ...(flags.target === undefined ? {} : { target: keyValueRecord('--target', flags.target) }),
    ...shipLogsRequest(flags),
  };
  if (Object.keys(request).length === 0) throw inputError('give at least one change: --image or --build, a limit, replicas, --ship-logs, or --target');
  const rollout = rolloutRequest(flags);
  if (rollout && !newImage) {
    if (flags.target === undefined) throw inputError('rollout flags (--strategy, …) go with a new --image, --build or --target: limits and replicas apply in place');
    request.rollout = rollout;
  }
  return request;
}

/** `--model` makes its own image, so it goes with rollout flags only. */
export function modelUpdateRequest(flags: UpdateFlags & { model: ModelRef }): ModelUpdateRequest {
  const others = ['image', 'build', 'target', 'shipLogs', ...SETTING_KEYS].filter((k) => flags[k as keyof UpdateFlags] !== undefined);
  if (others.length) {
    const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw inputError(`--model builds and rolls out its own image: give ${others.map(flag).join(', ')} in another service update`);
  }
  const rollout = rolloutRequest(flags);
  return { model: formatModelRef(flags.model), ...(rollout ? { rollout } : {}) };
}

/**
 * Starts the model update, follows its image build (the progress `image build` shows), then waits
 * for the hub to update the service to it. Returns the service as updated.
 */
async function updateModel(ctx: ClientContext, service: string, body: ModelUpdateRequest): Promise<{ update: ModelUpdate; deployment: Deployment }> {
  const pollMs = pollInterval(ctx.io.env);
  let update = await ctx.client.call('updateDeploymentModel', { params: { service }, body });
  if (update.manifest === null || update.image === null) {
    throw new EdgemlError((update.error?.code ?? ErrorCodes.HUB_CONFLICT) as ErrorCode, `model update ${update.id} failed: ${update.error?.message ?? 'its build was not queued'}`);
  }
  if (!ctx.out.json) ctx.io.stderr.write(`model update ${update.id}: manifest ${update.manifest.name}:${update.manifest.version} with ${update.model}, image ${update.image}\n`);
  const image = await waitForImage(ctx, await ctx.client.call('getImage', { params: { id: update.image } }), { logs: false, pollMs });
  const failure = outcomeError(image);
  if (failure) {
    ctx.io.stderr.write(renderFailedChecks(image));
    throw failure;
  }
  while (!FINISHED_MODEL_UPDATE_STATUSES.includes(update.status)) {
    await sleep(pollMs, undefined, { signal: ctx.signal });
    update = await ctx.client.call('getModelUpdate', { params: { id: update.id } });
  }
  if (update.status === 'failed') {
    // The hub's own code, as for error answers: a newer hub may use one not listed here.
    throw new EdgemlError((update.error?.code ?? ErrorCodes.HUB_CONFLICT) as ErrorCode, `model update ${update.id} failed: ${update.error?.message ?? 'the hub gave no reason'}`);
  }
  return { update, deployment: await ctx.client.call('getDeployment', { params: { service } }) };
}

/** Capture stays off (the hub's default) unless --capture-rate is given. */
function deployCapture(flags: DeployFlags): Pick<DeploymentCreate, 'capture'> {
  if (flags.captureRate === undefined) {
    if (flags.captureMaxBody !== undefined || flags.captureRedact !== undefined) throw inputError('--capture-max-body and --capture-redact need --capture-rate');
    return {};
  }
  return { capture: captureSettings({ rate: flags.captureRate, maxBody: flags.captureMaxBody, redact: flags.captureRedact }) };
}

/** The rollout as one line: `rollout 7 (canary, running): revision 3 to 12 device(s)`. */
function rolloutLine(r: Deployment['rollout']): string {
  return `${r.id ? `rollout ${r.id}` : 'rollout'} (${r.kind}, ${r.strategy}, ${r.phase}): revision ${r.revision ?? '-'} to ${r.devices.length} device(s)${r.id ? ` — edgeml rollout status ${r.id}` : ''}`;
}

/** `2 (fixed)` or `1–3, autoscaled at 70% of maxConcurrent (up after 5s, down after 60s)`. */
export function formatScale(s: Deployment['scale']): string {
  if (s.minReplicas === s.maxReplicas) return `${s.minReplicas} per device (fixed)`;
  return `${s.minReplicas}–${s.maxReplicas} per device, autoscaled at ${Math.round(s.targetUtilization * 100)}% of maxConcurrent (up after ${s.scaleUpWindow}, down after ${s.scaleDownWindow})`;
}

export function renderDeployment(d: Deployment): string {
  const l = d.limits;
  return renderFields([
    ['service', d.service],
    ['deleted', d.deletedAt === null ? undefined : `${d.deletedAt} by ${d.deletedBy?.keyName ?? '?'} (key ${d.deletedBy?.keyId ?? '?'}): on no device; its history is kept`],
    ['revision', String(d.revision)],
    ['image', d.image],
    ['build', d.build === null ? undefined : String(d.build)],
    ['models', d.models.length ? formatList(d.models.map((m) => `${m.name}:${m.version}`)) : undefined],
    ['target', formatPairs(d.target)],
    ['replicas', formatScale(d.scale)],
    ['limits', `per replica: maxConcurrent ${l.maxConcurrent}, maxQueue ${l.maxQueue}, memory ${l.memoryBytes === null ? '-' : formatBytes(l.memoryBytes)}, cpus ${l.cpus ?? '-'}`],
    ['capture', formatCapture(d.capture)],
    ['ship logs', d.shipLogs ?? 'off'],
    ['key', `ems_${d.keyId}… (shown once, at deploy)`],
    ['stable', d.stableRevision === null ? '- (no rollout has finished yet)' : `revision ${d.stableRevision}`],
    ['rollout', rolloutLine(d.rollout)],
    ['created', `${d.createdAt} by ${d.createdBy.keyName} (key ${d.createdBy.keyId})`],
  ]);
}

export function renderDeploymentList(deployments: readonly Deployment[]): string {
  const replicas = (s: Deployment['scale']) => (s.minReplicas === s.maxReplicas ? String(s.minReplicas) : `${s.minReplicas}-${s.maxReplicas}`);
  return renderTable(
    ['SERVICE', 'REVISION', 'IMAGE', 'TARGET', 'REPLICAS', 'DEVICES'],
    deployments.map((d) => [
      d.deletedAt === null ? d.service : `${d.service} (deleted ${d.deletedAt})`,
      String(d.revision),
      `…@${shortDigest(d.digest)}`,
      formatPairs(d.target),
      replicas(d.scale),
      d.deletedAt === null ? String(d.rollout.devices.length) : '-',
    ]),
    '(no deployments)',
  );
}

const PER_REPLICA_HELP = 'per replica: 3 ready replicas with --max-concurrent 1 --max-queue 10 hold 3 in flight and 30 waiting before 429';

function addSettingOptions(command: Command, defaults: boolean): Command {
  const dflt = (text: string) => (defaults ? ` (default ${text})` : ' (default: as now)');
  const { replicas, cpus, maxConcurrent, maxQueue } = LIMIT_BOUNDS;
  return command
    .option('--max-concurrent <n>', `requests in flight to each replica, ${maxConcurrent.minimum}–${maxConcurrent.maximum}${dflt('1')}`, parseInteger('--max-concurrent', 1))
    .option('--max-queue <n>', `requests waiting per ready replica, 0–${maxQueue.maximum}; beyond that 429${dflt('10')}; limits are ${PER_REPLICA_HELP}`, parseInteger('--max-queue', 0))
    .option('--memory <size>', `memory limit of each replica's container, e.g. 256m: ${formatBytes(LIMIT_BOUNDS.memoryBytes.minimum)} to ${formatBytes(LIMIT_BOUNDS.memoryBytes.maximum)}`, parseMemory)
    .option('--cpus <n>', `CPU limit of each replica's container, e.g. 0.5: at most ${cpus.maximum}`, parseCpus)
    .option('--replicas <n>', `a fixed number of replicas (containers) per device, ${replicas.minimum}–${replicas.maximum}; not with --min/--max-replicas`, parseInteger('--replicas', 1))
    .option('--min-replicas <n>', `fewest replicas per device, autoscaled${dflt('1')}`, parseInteger('--min-replicas', 1))
    .option('--max-replicas <n>', `most replicas per device, at most ${replicas.maximum}, as far as their --memory fits${dflt('1')}`, parseInteger('--max-replicas', 1))
    .option('--target-utilization <share>', `add a replica when in-flight + queued requests per replica stay above this share of --max-concurrent${dflt('0.7')}`, parseUtilization)
    .option('--scale-up-window <duration>', `how long the load must stay above the target before a replica is added${dflt('5s')}`, parsePattern('--scale-up-window', DURATION_PATTERN, '5s'))
    .option('--scale-down-window <duration>', `how long the load must stay below it before one replica goes${dflt('60s')}`, parsePattern('--scale-down-window', DURATION_PATTERN, '60s'));
}

function addSourceOptions(command: Command): Command {
  return addRolloutOptions(
    command
      .option('--image <ref>', 'image pinned by digest: REPOSITORY@sha256:…', parseImageRef)
      .option('--build <id>', 'a hub image (edgeml image build) that succeeded', parseImageId('--build')),
  );
}

export function addDeploymentCommands(program: Command, io: CliIo): void {
  const deploy = addSettingOptions(
    addSourceOptions(
      program
        .command('deploy')
        .description('deploy a service to the devices whose labels match --target; prints its API key once')
        .argument('<service>', 'service name: stable on the device, part of its URL', parseService),
    ).requiredOption('--target <key=value>', 'label selector; repeat to require several', repeatable(parseLabel('--target'))),
    true,
  )
    .option('--capture-rate <r>', 'share of requests sampled with their answers into telemetry, 0–1 (default 0: off)', parseRate('--capture-rate'))
    .option('--capture-max-body <size>', 'captured bodies are cut at this size, at most 64k (default 16k)', parseMaxBody('--capture-max-body'))
    .option('--capture-redact <names>', 'comma-separated JSON fields replaced by "[redacted]" on the device', parseRedact('--capture-redact'))
    .option(...SHIP_LOGS_OPTION)
    .action(
      clientAction<[string], DeployFlags>(io, async (ctx, [service], flags) => {
        const d = await ctx.client.call('createDeployment', { body: deployRequest(service, flags) });
        ctx.out.result(d, () =>
          [renderDeployment(d), '', 'service API key (shown once; clients send it as "Authorization: Bearer KEY"):', '', `  ${d.key}`].join('\n'),
        );
      }),
    );
  withClientOptions(deploy);

  const service = program.command('service').description('deployed services');
  addSettingOptions(
    addSourceOptions(
      service
        .command('update')
        .description(
          'change a service; its URL and key stay. A new --image/--build is rolled out; --model NAME:VERSION builds the current manifest with that model version and rolls the image out; limits and replicas apply on every device at once, in place (no new revision, no rollout); a new --target moves devices in and out by a rollout (not together with a new image)',
        )
        .argument('<service>', 'service name', parseService),
    )
      .option('--target <key=value>', 'a new label selector (repeat to require several): devices that newly match get the service, the others lose it', repeatable(parseLabel('--target')))
      .option(
        '--model <ref>',
        "NAME:VERSION or NAME@ALIAS: a new manifest version from the service's current one with this model in place of the one of the same name, built for the current image's platforms (progress shown) and rolled out",
        parseModelRef('--model', ['number', 'alias']),
      )
      .option(...SHIP_LOGS_OPTION),
    false,
  ).action(
    clientAction<[string], UpdateFlags>(io, async (ctx, [name], flags) => {
      if (flags.model !== undefined) {
        const { update, deployment } = await updateModel(ctx, name, modelUpdateRequest({ ...flags, model: flags.model }));
        ctx.out.result({ ...deployment, modelUpdate: update }, () => renderDeployment(deployment));
        return;
      }
      const d = await ctx.client.call('updateDeployment', { params: { service: name }, body: updateRequest(flags) });
      ctx.out.result(d, () => renderDeployment(d));
    }),
  );
  service
    .command('delete')
    .description("take a service off every device (containers drained and removed, images pruned, the gateway answers 404); the hub keeps its history, and the name can be deployed again")
    .argument('<service>', 'service name', parseService)
    .option('--yes', 'do not ask (needed when stdin is not a terminal)')
    .action(
      clientAction<[string], { yes?: boolean }>(io, async (ctx, [name], flags) => {
        if (!flags.yes && !(await confirm(`delete service ${name} from every device? [y/N] `, ctx.io.stderr))) {
          ctx.io.stderr.write('not deleted\n');
          process.exitCode = 1;
          return;
        }
        const d = await ctx.client.call('deleteDeployment', { params: { service: name } }, { retry: true });
        ctx.out.result(d, () => `service ${d.service} deleted: it leaves every device; its history stays (edgeml service list --all)`);
      }),
    );
  addGraceOption(
    service
      .command('rotate-key')
      .description('give a service a new API key (printed once); the old one keeps working for --grace, then only the new one')
      .argument('<service>', 'service name', parseService),
    'key',
  ).action(
      clientAction<[string], { grace: string }>(io, async (ctx, [name], flags) => {
        const r = await ctx.client.call('rotateDeploymentKey', { params: { service: name }, body: { grace: flags.grace } });
        const summary = { service: r.service, key: r.key, keyId: r.keyId, previousKeyValidUntil: r.previousKeyValidUntil };
        ctx.out.result(summary, () =>
          renderRotated(`service ${r.service}: new API key (clients send it as "Authorization: Bearer KEY"):`, r.key, 'key', r.previousKeyValidUntil),
        );
      }),
    );
  service
    .command('capture')
    .description('set data capture: devices sample requests and answers into telemetry, with no new revision and no restart')
    .argument('<service>', 'service name', parseService)
    .requiredOption('--rate <r>', 'share of requests sampled, 0–1; 0 turns capture off', parseRate('--rate'))
    .option('--max-body <size>', 'captured bodies are cut at this size, at most 64k (default: as now)', parseMaxBody('--max-body'))
    .option('--redact <names>', 'comma-separated JSON fields replaced by "[redacted]" on the device; "" for none (default: as now)', parseRedact('--redact'))
    .action(
      clientAction<[string], CaptureFlags>(io, async (ctx, [name], flags) => {
        // Flags not given keep their value: changing the rate must not quietly drop a redact list.
        const current = await ctx.client.call('getDeployment', { params: { service: name } });
        const d = await ctx.client.call('setDeploymentCapture', { params: { service: name }, body: captureSettings(flags, current.capture) });
        ctx.out.result(d, () => renderDeployment(d));
      }),
    );
  withWatchOptions(service.command('list').description('list deployed services').option('--all', 'deleted services too')).action(
    clientAction<[], { all?: boolean } & WatchFlags>(io, async (ctx, _args, flags) => {
      const fetch = () => ctx.client.call('listDeployments', flags.all ? { query: { include: 'deleted' } } : {});
      await showList(ctx, flags, 'edgeml service list', fetch, (list) => renderDeploymentList(list.deployments));
    }),
  );
  service
    .command('show')
    .description('show a deployed service and its current rollout')
    .argument('<service>', 'service name', parseService)
    .action(
      clientAction<[string], object>(io, async (ctx, [name]) => {
        const d = await ctx.client.call('getDeployment', { params: { service: name } });
        // Per device, as each reported it: a deleted service runs nowhere.
        const devices = d.deletedAt === null ? await fetchServiceReplicas(ctx.client, name) : [];
        ctx.out.result({ ...d, devices }, () => `${renderDeployment(d)}\n\n${renderServiceReplicas(devices)}`);
      }),
    );
  addClientOptions(service);
}

/** Asks on a terminal; with no terminal to ask on, refuses rather than guess. */
async function confirm(question: string, stderr: NodeJS.WriteStream): Promise<boolean> {
  if (!process.stdin.isTTY) throw inputError('stdin is not a terminal, so there is no one to ask: pass --yes to delete');
  const rl = createInterface({ input: process.stdin, output: stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
