/**
 * `edgeml score SERVICE --device ID --input FILE`: asks the hub where the device's gateway is, then
 * scores the input there with the service key, and prints the answer.
 *
 * The gateway URL is what the device said about itself, and the service key goes with the request.
 * So the key is sent only to a device the hub itself targets with the service and that reports it
 * serving, and over plain http only to a loopback address unless the user says otherwise. An https
 * gateway must show a certificate from the hub's CA (`--ca`, else the hub's GET /api/v1/ca): that
 * CA alone is trusted for it, as the hub signs every gateway's certificate; and as it signs every
 * device's, the certificate must also be the one issued to that device (CN=device id).
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { request } from 'undici';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { matchesLabels } from '../../shared/api/devices.js';
import { fileError, inputError, parseDeviceId } from '../args.js';
import type { HubClient } from '../../client/hub-client.js';
import { OPERATIONS } from '../../client/operations.js';
import { deviceIdentity, HUB_CA_HINT, inClearOffLoopback, parseCaPem, tlsError, trustingDispatcher, type TlsPeer } from '../../client/tls.js';
import { checkApiKey, clientAction, keyFromFile, warnSecretFlag, withClientOptions, type CliIo } from './client-command.js';
import { parseService } from './deployments.js';

interface ScoreFlags {
  device: string;
  input: string;
  key?: string;
  keyFile?: string;
}

export const SERVICE_KEY_ENV = 'EDGEML_SERVICE_KEY';
export const SERVICE_KEY_FILE_ENV = 'EDGEML_SERVICE_KEY_FILE';

/** The service key: --key, --key-file, then the environment (the key or a file holding it, not both). */
export function serviceKeyOf(flags: { key?: string | undefined; keyFile?: string | undefined }, io: Pick<CliIo, 'env' | 'stderr'>): string {
  if (flags.key !== undefined) {
    warnSecretFlag(io, '--key', `--key-file or ${SERVICE_KEY_ENV}`);
    return checkApiKey(flags.key, '--key');
  }
  if (flags.keyFile !== undefined) return keyFromFile(flags.keyFile, '--key-file');
  const [inline, file] = [io.env[SERVICE_KEY_ENV], io.env[SERVICE_KEY_FILE_ENV]];
  if (inline !== undefined && file !== undefined) throw inputError(`both ${SERVICE_KEY_ENV} and ${SERVICE_KEY_FILE_ENV} are set: keep one`);
  if (file !== undefined) return keyFromFile(file, SERVICE_KEY_FILE_ENV);
  if (!inline) throw inputError(`give the service key: --key-file FILE, ${SERVICE_KEY_FILE_ENV}=FILE or ${SERVICE_KEY_ENV}=…`);
  return checkApiKey(inline, SERVICE_KEY_ENV);
}

function notOnDevice(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.CLI_SERVICE_NOT_ON_DEVICE, message);
}

/** Refuses unless the deployment targets the device and the device reports the service serving. */
export function checkServiceOnDevice(device: Device, deployment: Deployment): void {
  const { service } = deployment;
  if (device.status === 'revoked') throw notOnDevice(`device ${device.id} is revoked: it runs no service`);
  if (!matchesLabels(device.labels, deployment.target)) {
    const selector = Object.entries(deployment.target).map(([k, v]) => `${k}=${v}`).join(',');
    throw notOnDevice(`service ${service} does not target device ${device.id} (its selector ${selector} does not match the device's labels)`);
  }
  const reported = device.services.find((s) => s.name === service);
  if (reported?.servingRevision == null) {
    const state = reported ? `it reports ${service} ${reported.phase}` : `it has not reported ${service}`;
    throw notOnDevice(`device ${device.id} does not run service ${service} yet (${state}); see \`edgeml device show ${device.id}\``);
  }
}

/** The score URL on a gateway, if the service key may be sent there. */
export function gatewayScoreUrl(opts: { deviceId: string; gateway: string; service: string; allowInsecureHttp: boolean }): string {
  const { deviceId, gateway, service } = opts;
  let url: URL;
  try {
    url = new URL(gateway);
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CLI_GATEWAY_REFUSED, `device ${deviceId} reported a gateway that is not a URL: ${JSON.stringify(gateway)}`, { cause: err });
  }
  if (inClearOffLoopback(url) && !opts.allowInsecureHttp) {
    throw new EdgemlError(
      ErrorCodes.CLI_GATEWAY_REFUSED,
      `device ${deviceId} reported a plain-http gateway (${gateway}): the service key would cross the network unencrypted; pass --allow-insecure-http to send it anyway`,
    );
  }
  return `${gateway}/v1/services/${service}/score`;
}

const CA_PATH = OPERATIONS.getCaCertificate.path;

/** The hub's CA as the hub serves it (public: no key needed). */
export async function fetchHubCa(client: HubClient): Promise<string> {
  let pem = '';
  try {
    const { body } = await client.call('getCaCertificate');
    for await (const chunk of body) pem += String(chunk);
  } catch (err) {
    if (!isEdgemlError(err, ErrorCodes.HUB_NOT_FOUND)) throw err;
    throw new EdgemlError(ErrorCodes.CLI_TLS, `the hub does not serve its CA at ${CA_PATH}; ${HUB_CA_HINT}`, { cause: err });
  }
  try {
    return parseCaPem(pem, `the hub's CA from ${CA_PATH}`);
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CLI_TLS, `the hub's answer to ${CA_PATH} is not a PEM certificate; ${HUB_CA_HINT}`, { cause: err });
  }
}

/** How a gateway's TLS failures are told. */
export function gatewayPeer(deviceId: string, gateway: string): TlsPeer {
  return {
    name: `the gateway of ${deviceId}`,
    url: gateway,
    caHint: `gateways show certificates from the hub's CA: ${HUB_CA_HINT}`,
    nameHint: `the agent's --advertise-url must name an address its certificate carries (the agent asks for one with its names)`,
  };
}

export function addScoreCommand(program: Command, io: CliIo): void {
  const score = program
    .command('score')
    .description("score an input on a device, through its gateway (the hub says where it is)")
    .argument('<service>', 'service name', parseService)
    .requiredOption('--device <id>', 'the device to score on', parseDeviceId('--device'))
    .requiredOption('--input <file>', 'JSON input, or - for stdin')
    .addOption(new Option('--key <key>', `the service API key from \`edgeml deploy\` (prefer --key-file or ${SERVICE_KEY_ENV}: flags show in ps)`).conflicts('keyFile'))
    .option('--key-file <file>', `a file holding the service key (env ${SERVICE_KEY_FILE_ENV})`)
    .action(
      clientAction<[string], ScoreFlags>(io, async (ctx, [service], flags) => {
        const key = serviceKeyOf(flags, io);
        const text = flags.input === '-' ? await readStdin() : await readFile(flags.input, 'utf8').catch((err: unknown) => Promise.reject(fileError(flags.input, err, '--input ')));
        try {
          JSON.parse(text);
        } catch (err) {
          throw inputError(`--input ${flags.input}: not valid JSON (${(err as Error).message})`, err);
        }
        const [device, deployment] = await Promise.all([
          ctx.client.call('getDevice', { params: { id: flags.device } }),
          ctx.client.call('getDeployment', { params: { service } }),
        ]);
        checkServiceOnDevice(device, deployment);
        if (!device.gateway) throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `device ${device.id} has not reported a gateway (status ${device.status})`);
        const url = gatewayScoreUrl({ deviceId: device.id, gateway: device.gateway, service, allowInsecureHttp: flags.allowInsecureHttp === true });
        const peer = gatewayPeer(device.id, device.gateway);
        const dispatcher = url.startsWith('https:') ? await trustingDispatcher(ctx.ca ?? (await fetchHubCa(ctx.client)), deviceIdentity(device.id, peer)) : undefined;
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: text,
          signal: ctx.signal,
          ...(dispatcher ? { dispatcher } : {}),
        }).catch(async (err: Error) => {
          const tls = await tlsError(err, peer);
          if (tls) throw tls;
          const code = (err as { code?: unknown }).code;
          throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `cannot reach the gateway of ${device.id} at ${device.gateway}: ${typeof code === 'string' ? code : err.message}`, { cause: err });
        });
        const answer = await res.body.text();
        if (res.statusCode !== 200) {
          let detail = answer.slice(0, 300);
          try {
            const parsed = JSON.parse(answer) as { error?: { code?: string; message?: string } };
            if (parsed.error?.message) detail = `${parsed.error.message} [${parsed.error.code ?? res.statusCode}]`;
          } catch {
            // not JSON: shown as it is
          }
          throw new EdgemlError(ErrorCodes.CLI_SCORE_FAILED, `${url} answered ${res.statusCode}: ${detail}`);
        }
        ctx.out.result(JSON.parse(answer) as unknown, () => JSON.stringify(JSON.parse(answer), null, 2));
      }),
    );
  withClientOptions(score);
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}
