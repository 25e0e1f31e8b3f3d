/**
 * `edgeml deploy` and `edgeml service …`: put a service on the devices a label selector matches,
 * move it to another image, set its data capture, and look at deployments. `deploy` prints the
 * service API key once.
 */
import type { Command } from 'commander';
import { IMAGE_REF_PATTERN, memoryLimit, type Deployment, type DeploymentCreate, type DeploymentCreated, type DeploymentList, type ServiceUpdate } from '../../shared/api/deployments.js';
import { LIMIT_BOUNDS, SERVICE_NAME_PATTERN } from '../../shared/protocol.js';
import { formatBytes } from '../../shared/size.js';
import { MAX_KEY_GRACE, type KeyRotated } from '../../shared/api/deployments.js';
import { DURATION_PATTERN } from '../../shared/duration.js';
import { inputError, keyValueRecord, parseLabel, repeatable, type KeyValue } from '../args.js';
import { apiPath } from '../hub-client.js';
import { formatList, formatPairs, renderFields, renderTable, shortDigest } from '../output.js';
import { addClientOptions, clientAction, withClientOptions, type CliIo } from './client-command.js';
import { parseImageId } from './images.js';
import { captureSettings, formatCapture, parseMaxBody, parseRate, parseRedact, type CaptureFlags } from './capture-options.js';
import { addRolloutOptions, rolloutRequest, type RolloutFlags } from './rollout-options.js';

interface SourceFlags extends RolloutFlags {
  image?: string;
  build?: number;
}

interface DeployFlags extends SourceFlags {
  target: KeyValue[];
  maxConcurrent?: number;
  maxQueue?: number;
  memory?: string;
  cpus?: number;
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

export function imageSource(flags: SourceFlags): ServiceUpdate {
  if ((flags.image === undefined) === (flags.build === undefined)) throw inputError('give exactly one of --image REF@sha256:… and --build ID');
  const rollout = rolloutRequest(flags);
  return { ...(flags.image !== undefined ? { image: flags.image } : { build: flags.build! }), ...(rollout ? { rollout } : {}) };
}

export function deployRequest(service: string, flags: DeployFlags): DeploymentCreate {
  return {
    service,
    ...imageSource(flags),
    target: keyValueRecord('--target', flags.target),
    ...(flags.maxConcurrent === undefined ? {} : { maxConcurrent: flags.maxConcurrent }),
    ...(flags.maxQueue === undefined ? {} : { maxQueue: flags.maxQueue }),
    ...(flags.memory === undefined ? {} : { memory: flags.memory }),
    ...(flags.cpus === undefined ? {} : { cpus: flags.cpus }),
    ...deployCapture(flags),
  };
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

export function renderDeployment(d: Deployment): string {
  const l = d.limits;
  return renderFields([
    ['service', d.service],
    ['revision', String(d.revision)],
    ['image', d.image],
    ['build', d.build === null ? undefined : String(d.build)],
    ['models', d.models.length ? formatList(d.models.map((m) => `${m.name}:${m.version}`)) : undefined],
    ['target', formatPairs(d.target)],
    ['limits', `maxConcurrent ${l.maxConcurrent}, maxQueue ${l.maxQueue}, memory ${l.memoryBytes === null ? '-' : formatBytes(l.memoryBytes)}, cpus ${l.cpus ?? '-'}`],
    ['capture', formatCapture(d.capture)],
    ['key', `ems_${d.keyId}… (shown once, at deploy)`],
    ['stable', d.stableRevision === null ? '- (no rollout has finished yet)' : `revision ${d.stableRevision}`],
    ['rollout', rolloutLine(d.rollout)],
    ['created', `${d.createdAt} by ${d.createdBy.keyName} (key ${d.createdBy.keyId})`],
  ]);
}

export function renderDeploymentList(deployments: readonly Deployment[]): string {
  return renderTable(
    ['SERVICE', 'REVISION', 'IMAGE', 'TARGET', 'DEVICES'],
    deployments.map((d) => [d.service, String(d.revision), `…@${shortDigest(d.digest)}`, formatPairs(d.target), String(d.rollout.devices.length)]),
    '(no deployments)',
  );
}

function addSourceOptions(command: Command): Command {
  return addRolloutOptions(
    command
      .option('--image <ref>', 'image pinned by digest: REPOSITORY@sha256:…', parseImageRef)
      .option('--build <id>', 'a hub image (edgeml image build) that succeeded', parseImageId('--build')),
  );
}

export function addDeploymentCommands(program: Command, io: CliIo): void {
  const deploy = addSourceOptions(
    program
      .command('deploy')
      .description('deploy a service to the devices whose labels match --target; prints its API key once')
      .argument('<service>', 'service name: stable on the device, part of its URL', parseService),
  )
    .requiredOption('--target <key=value>', 'label selector; repeat to require several', repeatable(parseLabel('--target')))
    .option('--max-concurrent <n>', `requests in flight to the container, per device, 1–${LIMIT_BOUNDS.maxConcurrent.maximum} (default 1)`, parseInteger('--max-concurrent', 1))
    .option('--max-queue <n>', `requests waiting for a slot, per device, 0–${LIMIT_BOUNDS.maxQueue.maximum}; beyond that 429 (default 10)`, parseInteger('--max-queue', 0))
    .option('--memory <size>', `container memory limit, e.g. 256m: ${formatBytes(LIMIT_BOUNDS.memoryBytes.minimum)} to ${formatBytes(LIMIT_BOUNDS.memoryBytes.maximum)}`, parseMemory)
    .option('--cpus <n>', `container CPU limit, e.g. 0.5: at most ${LIMIT_BOUNDS.cpus.maximum}`, parseCpus)
    .option('--capture-rate <r>', 'share of requests sampled with their answers into telemetry, 0–1 (default 0: off)', parseRate('--capture-rate'))
    .option('--capture-max-body <size>', 'captured bodies are cut at this size, at most 64k (default 16k)', parseMaxBody('--capture-max-body'))
    .option('--capture-redact <names>', 'comma-separated JSON fields replaced by "[redacted]" on the device', parseRedact('--capture-redact'))
    .action(
      clientAction<[string], DeployFlags>(io, async (ctx, [service], flags) => {
        const d = await ctx.client.json<DeploymentCreated>('POST', apiPath('deployments'), { body: deployRequest(service, flags) });
        ctx.out.result(d, () =>
          [renderDeployment(d), '', 'service API key (shown once; clients send it as "Authorization: Bearer KEY"):', '', `  ${d.key}`].join('\n'),
        );
      }),
    );
  withClientOptions(deploy);

  const service = program.command('service').description('deployed services');
  addSourceOptions(service.command('update').description('move a service to another image; its URL and key stay').argument('<service>', 'service name', parseService)).action(
    clientAction<[string], SourceFlags>(io, async (ctx, [name], flags) => {
      const d = await ctx.client.json<Deployment>('POST', apiPath('deployments', name, 'update'), { body: imageSource(flags) });
      ctx.out.result(d, () => renderDeployment(d));
    }),
  );
  service
    .command('rotate-key')
    .description('give a service a new API key (printed once); the old one keeps working for --grace, then only the new one')
    .argument('<service>', 'service name', parseService)
    .option('--grace <duration>', `how long the old key stays valid beside the new one, at most ${MAX_KEY_GRACE}; 0s: not at all`, parsePattern('--grace', DURATION_PATTERN, '10m'), '10m')
    .action(
      clientAction<[string], { grace: string }>(io, async (ctx, [name], flags) => {
        const r = await ctx.client.json<KeyRotated>('POST', apiPath('deployments', name, 'rotate-key'), { body: { grace: flags.grace } });
        const summary = { service: r.service, key: r.key, keyId: r.keyId, previousKeyValidUntil: r.previousKeyValidUntil };
        ctx.out.result(summary, () =>
          [
            `service ${r.service}: new API key (shown once; clients send it as "Authorization: Bearer KEY"):`,
            '',
            `  ${r.key}`,
            '',
            r.previousKeyValidUntil ? `the old key works until ${r.previousKeyValidUntil}` : 'the old key no longer works',
          ].join('\n'),
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
        const current = await ctx.client.json<Deployment>('GET', apiPath('deployments', name));
        const d = await ctx.client.json<Deployment>('PUT', apiPath('deployments', name, 'capture'), { body: captureSettings(flags, current.capture) });
        ctx.out.result(d, () => renderDeployment(d));
      }),
    );
  service
    .command('list')
    .description('list deployed services')
    .action(
      clientAction<[], object>(io, async (ctx) => {
        const list = await ctx.client.json<DeploymentList>('GET', apiPath('deployments'));
        ctx.out.result(list, () => renderDeploymentList(list.deployments));
      }),
    );
  service
    .command('show')
    .description('show a deployed service and its current rollout')
    .argument('<service>', 'service name', parseService)
    .action(
      clientAction<[string], object>(io, async (ctx, [name]) => {
        const d = await ctx.client.json<Deployment>('GET', apiPath('deployments', name));
        ctx.out.result(d, () => renderDeployment(d));
      }),
    );
  addClientOptions(service);
}
