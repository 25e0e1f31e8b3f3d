/**
 * `edgeml service client SVC --lang python|javascript|java|csharp|curl`: prints a small client for
 * the service as it is served on one device, written from a template in cli/client-templates/.
 * The client has the device's gateway score URL in it; the key comes from an environment variable
 * at run time (never written into the source), and a CA file from EDGEML_SERVICE_CA.
 *
 * Templates are real source files whose placeholders sit in string literals ("__EDGEML_X__" or
 * '__EDGEML_X__') or comments, so each stays a valid program and every value is quoted for its
 * language here, in one place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { inputError, parseChoice, parseDeviceId } from '../args.js';
import { clientAction, withClientOptions, type ClientContext, type CliIo } from './client-command.js';
import { parseService } from './deployments.js';
import { checkServiceOnDevice, gatewayScoreUrl, SERVICE_KEY_ENV } from './score.js';

export const CLIENT_LANGUAGES = ['python', 'javascript', 'java', 'csharp', 'curl'] as const;
export type ClientLanguage = (typeof CLIENT_LANGUAGES)[number];

/** The CA the generated clients trust for the gateway, when set. */
export const SERVICE_CA_ENV = 'EDGEML_SERVICE_CA';

const TEMPLATE_FILES: Record<ClientLanguage, string> = {
  python: 'python.py',
  javascript: 'javascript.mjs',
  java: 'EdgemlClient.java',
  csharp: 'EdgemlClient.cs',
  curl: 'curl.sh',
};

/** A shell variable name: the curl client reads it with printenv, the others by name. */
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A sample longer than this (an image in base64, say) is not copied into a comment. */
const MAX_SAMPLE_CHARS = 1000;

export interface ClientSpec {
  service: string;
  scoreUrl: string;
  keyEnv: string;
  /** The manifest schema's sample input, when the hub could say. */
  sample?: unknown;
}

export function parseKeyEnv(value: string): string {
  if (!ENV_NAME_PATTERN.test(value)) throw inputError(`--key-env ${JSON.stringify(value)}: expected an environment variable name (letters, digits, _; not starting with a digit)`);
  return value;
}

/**
 * A double-quoted literal that Python, JavaScript, Java and C# all read the same: JSON's escapes,
 * and everything outside printable ASCII as \uXXXX (a raw U+2028 would end a JavaScript comment line).
 */
export function quotedLiteral(text: string): string {
  return asciiJson(text);
}

/** Compact JSON with everything outside printable ASCII as \uXXXX (JSON's own escapes are valid in all four languages). */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A single-quoted shell word: nothing inside is expanded. */
export function shellQuoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The sample as one comment-safe line: compact ASCII JSON (no line break can end the comment). */
function sampleLine(sample: unknown): string {
  if (sample === undefined) return '(none known: see the service\'s manifest schema)';
  const json = asciiJson(sample);
  return json.length <= MAX_SAMPLE_CHARS ? json : `(${json.length} characters: see \`edgeml manifest show\`)`;
}

export function renderClient(template: string, spec: ClientSpec): string {
  parseKeyEnv(spec.keyEnv);
  parseService(spec.service);
  const values: Record<string, string> = { SCORE_URL: spec.scoreUrl, KEY_ENV: spec.keyEnv };
  const rendered = template
    .replace(/"__EDGEML_([A-Z_]+)__"/g, (whole, name: string) => (values[name] === undefined ? whole : quotedLiteral(values[name])))
    .replace(/'__EDGEML_([A-Z_]+)__'/g, (whole, name: string) => (values[name] === undefined ? whole : shellQuoted(values[name])))
    .replaceAll('__EDGEML_KEY_ENV_NAME__', spec.keyEnv)
    .replaceAll('__EDGEML_SERVICE__', spec.service)
    .replaceAll('__EDGEML_SAMPLE__', () => sampleLine(spec.sample));
  const left = /__EDGEML_[A-Z_]+__/.exec(rendered);
  if (left) throw new EdgemlError(ErrorCodes.INTERNAL, `client template: placeholder ${left[0]} has no value`);
  return rendered;
}

/** cli/client-templates/, found from this module in the source tree, in dist/ and in the installed package. */
function templatesDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'cli', 'client-templates');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new EdgemlError(ErrorCodes.INTERNAL, 'the client templates (cli/client-templates/) are not installed with edgeml');
  }
}

export function clientTemplate(lang: ClientLanguage): string {
  return readFileSync(join(templatesDir(), TEMPLATE_FILES[lang]), 'utf8');
}

function notServed(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.CLI_SERVICE_NOT_ON_DEVICE, message);
}

/** The device to write the client for: the one named, or the only one serving the service. */
async function servingDevice(ctx: ClientContext, deployment: Deployment, deviceId: string | undefined): Promise<Device> {
  if (deviceId !== undefined) {
    const device = await ctx.client.call('getDevice', { params: { id: deviceId } });
    checkServiceOnDevice(device, deployment);
    return device;
  }
  const label = Object.entries(deployment.target).map(([k, v]) => `${k}=${v}`);
  const { devices } = await ctx.client.call('listDevices', { query: { label } });
  const serving = devices.filter((d) => d.status !== 'revoked' && d.services.some((s) => s.name === deployment.service && s.servingRevision != null));
  const [only, ...more] = serving;
  if (!only) throw notServed(`no device serves ${deployment.service} yet; see \`edgeml service show ${deployment.service}\``);
  if (more.length) throw inputError(`${serving.length} devices serve ${deployment.service} (${serving.map((d) => d.id).join(', ')}): pick one with --device`);
  return only;
}

/** The manifest schema's sample, when the service runs a hub-built image whose manifest is readable. */
async function serviceSample(ctx: ClientContext, deployment: Deployment): Promise<unknown> {
  if (deployment.build === null) return undefined;
  try {
    const image = await ctx.client.call('getImage', { params: { id: deployment.build } });
    const manifest = await ctx.client.call('getManifestVersion', { params: { name: image.manifest.name, ref: String(image.manifest.version) } });
    return manifest.schema.sample;
  } catch (err) {
    // Only a comment in the client: a key without read access to images, or a deleted image, is no failure.
    if (isEdgemlError(err) && err.httpStatus !== undefined) return undefined;
    throw err;
  }
}

interface ClientFlags {
  lang: ClientLanguage;
  device?: string;
  keyEnv: string;
}

/** Adds `client` to the `service` group (made by the deployment commands; made here if it is not). */
export function addServiceClientCommand(program: Command, io: CliIo): void {
  const service = program.commands.find((c) => c.name() === 'service') ?? program.command('service').description('deployed services');
  const client = service
    .command('client')
    .description(`print a dependency-free client for a service on one device's gateway (key from an environment variable, CA from ${SERVICE_CA_ENV}, retries 429/503 after Retry-After)`)
    .argument('<service>', 'service name', parseService)
    .requiredOption('--lang <language>', CLIENT_LANGUAGES.join(', '), parseChoice('--lang', CLIENT_LANGUAGES))
    .option('--device <id>', 'the device whose gateway the client calls (needed when several serve the service)', parseDeviceId('--device'))
    .option('--key-env <name>', 'the environment variable the client reads the service key from', parseKeyEnv, SERVICE_KEY_ENV)
    .action(
      clientAction<[string], ClientFlags>(io, async (ctx, [name], flags) => {
        const deployment = await ctx.client.call('getDeployment', { params: { service: name } });
        const device = await servingDevice(ctx, deployment, flags.device);
        if (!device.gateway) throw notServed(`device ${device.id} has not reported a gateway (status ${device.status})`);
        const scoreUrl = gatewayScoreUrl({ deviceId: device.id, gateway: device.gateway, service: name, allowInsecureHttp: flags.allowInsecureHttp === true });
        const source = renderClient(clientTemplate(flags.lang), { service: name, scoreUrl, keyEnv: flags.keyEnv, sample: await serviceSample(ctx, deployment) });
        ctx.out.result({ service: name, device: device.id, lang: flags.lang, url: scoreUrl, keyEnv: flags.keyEnv, caEnv: SERVICE_CA_ENV, source }, () => source);
      }),
    );
  withClientOptions(client);
}
