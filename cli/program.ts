/**
 * The `edgeml` command line: the program with its process commands (`hub start`, `agent start`,
 * which run until SIGINT or SIGTERM), and `main`, which adds only the client command (talking to
 * the hub's REST API) that the command line names: loading all of them (and the schemas and
 * packages they import) is most of a client command's start-up. cli/main.ts lists them all.
 */
import { Command, CommanderError, Option } from 'commander';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../shared/errors.js';
import type { ConfigSources } from '../shared/config-loader.js';
import type { Logger, LogLevel } from '../shared/logger.js';
import { edgemlVersion } from '../shared/version.js';
import type { CliIo } from './commands/client-command.js';
import { createOutput } from './output.js';
import { renderError, renderUsageError, wantsDebug, wantsJson } from './error-output.js';
import { unknownEnvWarnings } from './known-env.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/** 128 + SIGINT, as shells report a command stopped by Ctrl-C. */
const EXIT_INTERRUPTED = 130;

/** Errors about what the user typed or pointed at: exit 2 like a usage error. */
const USAGE_CODES: readonly string[] = [ErrorCodes.CONFIG_INVALID, ErrorCodes.CLI_INPUT_INVALID];

/**
 * Client commands get an AbortSignal for Ctrl-C instead of dying on the spot, so a download can
 * remove its partial file; a second Ctrl-C exits at once.
 */
function interruptController(): { io: Pick<CliIo, 'interruptSignal'>; interrupted(): boolean } {
  let controller: AbortController | undefined;
  return {
    io: {
      interruptSignal() {
        if (controller) return controller.signal;
        const c = (controller = new AbortController());
        const onSignal = () => (c.signal.aborted ? process.exit(EXIT_INTERRUPTED) : c.abort(new Error('interrupted')));
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        return c.signal;
      },
    },
    interrupted: () => controller?.signal.aborted === true,
  };
}

/** Keeps a process command alive until a signal; a second signal forces the exit. */
function runUntilSignal(logger: Logger, close: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      close().then(resolve, (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exitCode = EXIT_FAILURE;
        resolve();
      });
    };
    // `on`, not `once`: a second Ctrl-C must reach `stop` (and force the exit), not Node's default.
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * The action of a long-running process command: configuration, logger, start, run until a signal.
 * `load` and `start` import their modules lazily: the process configs compile their schemas and pull
 * in the broker (aedes) at import, which every client command would otherwise pay for at start-up.
 */
function processAction<C extends { logLevel: LogLevel }>(
  name: 'hub' | 'agent',
  load: () => Promise<(sources: ConfigSources) => C>,
  start: (config: C, logger: Logger) => Promise<{ close(): Promise<void> }>,
) {
  return async (flags: Record<string, string | undefined>): Promise<void> => {
    const config = (await load())({ flags, env: process.env, file: flags.config });
    const { createLogger } = await import('../shared/logger.js');
    const logger = createLogger({ name, level: config.logLevel });
    const running = await start(config, logger);
    await runUntilSignal(logger, running.close);
  };
}

const hubConfigLoader = async () => (await import('../hub/config.js')).loadHubConfig;
const agentConfigLoader = async () => (await import('../agent/config.js')).loadAgentConfig;

// No commander choices: they would load the logger (pino) for every command; the process's config
// schema refuses an unknown level and names the valid ones.
const logLevelOption = () => new Option('--log-level <level>', 'log level (default info)');

export interface ProgramStyle {
  /** `--json` on the command line: usage errors are JSON too. */
  json?: boolean;
}

/** The program without the client commands (cli/main.ts adds them all, `main` the one it needs). */
export function buildBaseProgram(io: CliIo, style: ProgramStyle = {}): Command {
  const program = new Command('edgeml')
    .description('Manage machine-learning models on fleets of edge devices.')
    .version(edgemlVersion(), '-V, --version')
    // main() takes --debug from anywhere on the line; declared here so --help shows it.
    .option('--debug', 'print the stack trace of an internal error (env EDGEML_DEBUG=1)')
    // Before any subcommand exists: commander copies these settings into each one it creates.
    .configureOutput({ outputError: (text, write) => write(renderUsageError(text, style.json === true)) })
    .showHelpAfterError(style.json === true ? false : '(run with --help for usage)')
    // A command's options belong to it, not to its parent: `telemetry SERVICE --since` and
    // `telemetry device ID --since` are different commands with the same flags.
    .enablePositionalOptions()
    .exitOverride();

  const hub = program.command('hub').description('the hub: REST API, MQTT broker, registry, builds, rollouts');
  hub
    .command('start')
    .description('run the hub in the foreground')
    .option('--data <dir>', 'data directory (default ./.edgeml/hub)')
    .option('--http <host:port>', 'REST API listen address (default 127.0.0.1:8080)')
    .option('--mqtt <host:port>', 'MQTT broker listen address (default 127.0.0.1:1883)')
    .option('--mqtt-advertise <url>', 'the broker URL `device enroll` tells devices, e.g. mqtts://hub.example:8883 (default: the --mqtt address once bound); for a hub on 0.0.0.0 or behind NAT')
    .option('--tls <mode>', "HTTPS for the REST API: auto (a certificate from the hub's CA) or off (loopback only); default off on loopback, auto otherwise")
    .option('--tls-cert <file>', "an operator's own PEM certificate for the REST API (with --tls-key)")
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--tls-san <names>', 'more DNS names or IP addresses, comma-separated, for the certificates the hub signs for itself')
    .option('--ca-cert <file>', "an operator's own CA certificate to sign with (with --ca-key); default: a CA made at first start in DATA/ca")
    .option('--ca-key <file>', 'PEM private key for --ca-cert')
    .option('--device-cert-lifetime <duration>', 'lifetime of device certificates (gateway HTTPS, MQTT client); agents renew at two thirds (default 30d)')
    .option('--mqtt-tls <mode>', "MQTT over TLS: auto (a certificate from the hub's CA; devices may use client certificates) or off (loopback only); default off on loopback, auto otherwise")
    .option('--mqtt-tls-cert <file>', 'PEM certificate: the broker speaks MQTT over TLS (with --mqtt-tls-key)')
    .option('--mqtt-tls-key <file>', 'PEM private key for --mqtt-tls-cert')
    .option('--mqtt-max-packet <size>', 'largest MQTT packet a connected device may send; larger ones close its connection (default 257k, also the minimum)')
    .option('--mqtt-max-connecting <n>', 'MQTT connections from one address waiting for their CONNECT at once; more are closed (default 32)')
    .option('--registry <host:port>', 'OCI registry for built images (default 127.0.0.1:5000)')
    .option('--max-upload <size>', 'largest model upload, e.g. 500m or 4g (default 2g)')
    .option('--max-archive-files <n>', 'most entries in an uploaded model directory (default 10000)')
    .option('--upload-idle-timeout <duration>', 'a model upload with no byte for this long is ended with 408 and nothing is stored (default 60s)')
    .option('--image-prefix <path>', 'repository path for built images: REGISTRY/PREFIX/MANIFEST (default edgeml)')
    .option('--base-image-node <ref>', 'base image for node runtimes (default: the one images/base/build.sh pushes to the registry)')
    .option('--base-image-python <ref>', 'base image for python runtimes (default: the one images/base/build.sh pushes to the registry)')
    .option('--extra-ca <file>', 'PEM bundle of extra CAs for dependency installs in builds (mounted as a build secret, never in the image)')
    .option('--smoke-timeout <duration>', "how long a built image may take to answer its sample, per platform (default 5m)")
    .option('--telemetry-dir <dir>', 'where telemetry and captures are stored (default DATA/telemetry)')
    .option('--telemetry-retention <days>', 'days of telemetry and captures kept, e.g. 30d (default 30d)')
    .option('--config <file>', 'JSON config file (flags and EDGEML_HUB_* variables override it)')
    .addOption(logLevelOption())
    .action(processAction('hub', hubConfigLoader, async (config, logger) => (await import('../hub/main.js')).startHub(config, logger)));

  hub
    .command('ca')
    .description("print the hub's CA certificate (PEM), what clients and devices trust; made in DATA/ca if no hub has started there yet")
    .option('--data <dir>', 'data directory (default ./.edgeml/hub)')
    .option('--ca-cert <file>', "the operator's own CA certificate, if the hub runs with --ca-cert")
    .option('--json', 'print {certificate, fingerprint256, subject, notAfter}')
    .action(async (flags: { data?: string; caCert?: string; json?: boolean }) => {
      const config = (await hubConfigLoader())({ flags: { data: flags.data, caCert: flags.caCert }, env: io.env });
      const ca = await (await import('../hub/pki/ca.js')).caCertificateFor(config);
      createOutput({ json: flags.json === true, stdout: io.stdout }).result(ca, () => ca.certificate);
    });

  const agent = program.command('agent').description('the device agent: MQTT link, reconcile loop, scoring gateway, telemetry');
  agent
    .command('start')
    .description('run the agent in the foreground')
    .option('--hub <url>', "hub's MQTT URL (default mqtt://127.0.0.1:1883)")
    .option('--device-id <id>', 'this device id')
    .option('--token <token>', 'device token from `edgeml device enroll` (prefer EDGEML_AGENT_TOKEN: flags show in ps)')
    .option('--token-file <file>', 'a file holding the device token, read before every connection (a rotated token can be put there without a restart)')
    .option('--auth <mode>', 'token (default), or cert: a client certificate from the hub, asked for with the token on first contact (needs mqtts://)')
    .option('--hub-ca <file>', "PEM CA bundle for an mqtts:// hub: `edgeml hub ca` prints the hub's")
    .option('--allow-plain-mqtt', 'allow a plain mqtt:// hub on an address other than loopback (the token then crosses the network in clear)')
    .option('--data <dir>', 'data directory (default ./.edgeml/agent)')
    .option('--gateway <host:port>', 'scoring gateway listen address (default 127.0.0.1:8090)')
    .option('--advertise-url <url>', 'the gateway URL the hub gives to clients, e.g. https://10.0.4.17:8090 (default: the bound address)')
    .option('--gateway-tls <mode>', "auto (default): HTTPS with a certificate from the hub's CA, renewed before it expires; off: plain HTTP, on a loopback address only unless --allow-plain-gateway")
    .option('--allow-plain-gateway', 'allow --gateway-tls off on an address other than loopback')
    .option('--platform <os/arch>', 'image platform to pull (default: this machine, e.g. linux/arm64)')
    .option('--telemetry-interval <duration>', 'how often a metrics batch is made, at least 1s (default 10s)')
    .option('--telemetry-queue <size>', 'disk space for metrics batches waiting for the hub; the oldest are dropped beyond it (default 64m)')
    .option('--capture-queue <size>', 'disk space for captured requests waiting for the hub, apart from metrics (default 64m)')
    .option('--feedback-quota <size>', 'disk space for labels waiting for the hub; when full, new labels are refused (503), none is dropped (default 16m)')
    .option('--log-queue <size>', 'disk space for shipped error lines (deployments with --ship-logs error) waiting for the hub; the oldest are dropped beyond it (default 8m)')
    .option('--health-timeout <duration>', 'how long a new container may take to answer /health (default 3m)')
    .option('--min-free-disk <size>', "pre-flight: the free space that must remain on Docker's data root after a pull (default 512m)")
    .option('--pull-stall-timeout <duration>', 'a pull with no progress for this long fails and is retried (default 2m)')
    .option('--memory-margin <size>', "memory the autoscaler keeps free: a replica is added only if its --memory limit fits in the device's available memory less this; replicas without a memory limit are not guarded (default 128m)")
    .option('--assume-memory <size>', 'assume the device has this much memory for replicas, instead of reading it (for tests and capacity planning); the limits of running replicas are taken from it')
    .option('--config <file>', 'JSON config file (flags and EDGEML_AGENT_* variables override it)')
    .addOption(logLevelOption())
    // Only a flag shows in ps: the agent warns about that one (not about the environment or a config file).
    .action((flags: Record<string, string | undefined>) =>
      processAction('agent', agentConfigLoader, async (config, logger) => (await import('../agent/main.js')).startAgent(config, logger, { tokenOnCommandLine: flags.token !== undefined }))(flags),
    );

  return program;
}

type AddCommands = (program: Command, io: CliIo) => unknown;

/**
 * The modules that register each top-level client command, in cli/main.ts's order (`service` is
 * deployments' with service-client's `service client` added). `help`, `completion` and a name not
 * listed (a typo, for its did-you-mean) get the whole tree.
 */
const LAZY_COMMANDS: Readonly<Record<string, readonly (() => Promise<AddCommands>)[]>> = {
  model: [async () => (await import('./commands/models.js')).addModelCommands],
  manifest: [async () => (await import('./commands/manifests.js')).addManifestCommands],
  image: [async () => (await import('./commands/images.js')).addImageCommands],
  device: [async () => (await import('./commands/devices.js')).addDeviceCommands],
  deploy: [async () => (await import('./commands/deployments.js')).addDeploymentCommands],
  service: [async () => (await import('./commands/deployments.js')).addDeploymentCommands, async () => (await import('./commands/service-client.js')).addServiceClientCommand],
  rollout: [async () => (await import('./commands/rollouts.js')).addRolloutCommands],
  score: [async () => (await import('./commands/score.js')).addScoreCommand],
  apikey: [async () => (await import('./commands/apikeys.js')).addApiKeyCommands],
  telemetry: [async () => (await import('./commands/telemetry.js')).addTelemetryCommands],
  capture: [async () => (await import('./commands/captures.js')).addCaptureCommands],
  retrain: [async () => (await import('./commands/retraining.js')).addRetrainingCommands],
  dataset: [async () => (await import('./commands/datasets.js')).addDatasetCommands],
  trainer: [async () => (await import('./commands/trainers.js')).addTrainerCommands],
  logs: [async () => (await import('./commands/logs.js')).addLogsCommand],
  context: [async () => (await import('./commands/context.js')).addContextCommands],
  serve: [async () => (await import('./commands/serve.js')).addServeCommand],
  schema: [async () => (await import('./commands/schema.js')).addSchemaCommands],
};

/** The top-level command a command line names: the program's own options take no value. */
export function commandName(args: readonly string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

/** Adds the client command `args` names (its modules only), none for `hub` and `agent`, or all of them. */
export async function withClientCommands(program: Command, io: CliIo, args: readonly string[]): Promise<Command> {
  const name = commandName(args);
  if (program.commands.some((c) => c.name() === name)) return program;
  const loaders = name === undefined || !Object.hasOwn(LAZY_COMMANDS, name) ? undefined : LAZY_COMMANDS[name];
  if (!loaders) return (await import('./main.js')).addClientCommands(program, io);
  for (const load of loaders) (await load())(program, io);
  return program;
}

/** `--debug` is a program-wide flag wherever it is typed: moved before the subcommand, where commander expects it. */
function hoistDebug(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  if (!head.slice(2).includes('--debug')) return [...argv];
  const rest = [...head.slice(2).filter((a) => a !== '--debug'), ...(end < 0 ? [] : argv.slice(end))];
  return [...argv.slice(0, 2), '--debug', ...rest];
}

/**
 * A reader that stops early (`edgeml model list --json | head -1`) closes the pipe: that is how
 * pipelines work, not a failure, so the process ends quietly instead of throwing EPIPE.
 */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw err;
  });
}

export async function main(argv: string[]): Promise<void> {
  const args = argv.slice(2);
  const style = { json: wantsJson(args), debug: wantsDebug(args, process.env) };
  exitQuietlyOnClosedPipe(process.stdout);
  for (const line of unknownEnvWarnings(process.env)) process.stderr.write(`edgeml: ${line}\n`);
  const interrupt = interruptController();
  const io: CliIo = { env: process.env, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), ...interrupt.io };
  const program = await withClientCommands(buildBaseProgram(io, style), io, args);
  try {
    await program.parseAsync(hoistDebug(argv));
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed help, the version, or the usage error.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    if (interrupt.interrupted()) {
      const said = isEdgemlError(err) && err.code === ErrorCodes.CLI_INTERRUPTED ? err.message : 'interrupted';
      process.stderr.write(style.json ? renderError(new EdgemlError(ErrorCodes.CLI_INTERRUPTED, said), style) : `edgeml: ${said}\n`);
      process.exitCode = EXIT_INTERRUPTED;
      return;
    }
    process.stderr.write(renderError(err, style));
    process.exitCode = isEdgemlError(err) && USAGE_CODES.includes(err.code) ? EXIT_USAGE : EXIT_FAILURE;
  }
}
