import { Type, type Static } from '@sinclair/typebox';
import { HOST_PORT_EXAMPLES, HOST_PORT_PATTERN, isLoopbackHost, parseHostPort, unbracket } from '../shared/address.js';
import { loadConfig, type ConfigSources } from '../shared/config-loader.js';
import { DURATION_EXAMPLES, DURATION_PATTERN, parseDuration } from '../shared/duration.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { LOG_LEVELS } from '../shared/logger.js';
import { MAX_MESSAGE_BYTES } from '../shared/protocol.js';
import { formatBytes, parseSize, SIZE_EXAMPLES, SIZE_PATTERN } from '../shared/size.js';
import { stringEnum } from '../shared/schema.js';
import { DEVICE_ID_PATTERN } from '../shared/topics.js';
import { HEADER_BYTES, MAX_ID_BYTES } from './telemetry/outbox-file.js';

export const AgentConfigSchema = Type.Object(
  {
    // No user:password@ in the URL: it would end up in logs and `ps`; the token has its own key.
    hub: Type.String({ pattern: '^mqtts?://[^/@]+$', examples: ['mqtt://127.0.0.1:1883', 'mqtts://hub.example:8883'], default: 'mqtt://127.0.0.1:1883', description: "hub's MQTT broker URL" }),
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN, examples: ['gateway-01'], description: 'this device id (as enrolled)' }),
    token: Type.Optional(Type.String({ minLength: 1, description: 'the device token from `edgeml device enroll` (prefer tokenFile or the environment: flags show in ps)' })),
    tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'a file holding the device token; read again before every connection, so a rotated token can be put there without a restart' })),
    auth: stringEnum(['token', 'cert'] as const, {
      default: 'token',
      description: 'how the agent authenticates to the broker: token, or cert (a client certificate from the hub, asked for with the token on first contact; needs mqtts://)',
    }),
    hubCa: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle that signed the hub broker certificate (for mqtts:// with a private CA)' })),
    data: Type.String({ minLength: 1, default: './.edgeml/agent', description: 'data directory' }),
    gateway: Type.String({ pattern: HOST_PORT_PATTERN, examples: HOST_PORT_EXAMPLES, default: '127.0.0.1:8090', description: 'scoring gateway listen address' }),
    gatewayTls: stringEnum(['auto', 'off'] as const, {
      default: 'auto',
      description: "HTTPS for the gateway: auto gets a certificate from the hub's CA (key made on the device) and renews it; off only on a loopback address, or with allowPlainGateway",
    }),
    allowPlainGateway: Type.Boolean({ default: false, description: 'allow gatewayTls off on an address other than loopback (keys and inputs then cross the network in clear)' }),
    allowPlainMqtt: Type.Boolean({ default: false, description: 'allow a plain mqtt:// hub on an address other than loopback (the device token then crosses the network in clear)' }),
    advertiseUrl: Type.Optional(
      Type.String({ pattern: '^https?://[^/@\\s]+$', examples: ['http://10.0.4.17:8090', 'https://cam-07.example:8443'], description: 'the gateway URL the hub hands to clients (default: the bound address)' }),
    ),
    platform: Type.Optional(
      Type.String({ pattern: '^linux/(amd64|arm64|arm/v7|arm/v6|386|ppc64le|s390x|riscv64)$', examples: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'] }),
    ),
    telemetryInterval: Type.String({ pattern: DURATION_PATTERN, examples: DURATION_EXAMPLES, default: '10s', description: 'how often a metrics batch is made (at least 1s)' }),
    telemetryQueue: Type.String({
      pattern: SIZE_PATTERN,
      examples: SIZE_EXAMPLES,
      default: '64m',
      description: 'disk space for metrics batches waiting for the hub; when full, the oldest are dropped (and counted)',
    }),
    captureQueue: Type.String({
      pattern: SIZE_PATTERN,
      examples: SIZE_EXAMPLES,
      default: '64m',
      description: 'disk space for captured requests waiting for the hub, apart from metrics so capture never pushes them out',
    }),
    // Optional rather than defaulted here: the outbox applies its default (DEFAULT_FEEDBACK_QUOTA_BYTES).
    feedbackQuota: Type.Optional(
      Type.String({
        pattern: SIZE_PATTERN,
        examples: ['16m', '256m'],
        description: 'disk space for labels (POST /v1/services/NAME/feedback) waiting for the hub, default 16m; when full, new labels are refused (503) and none accepted is dropped',
      }),
    ),
    logQueue: Type.String({
      pattern: SIZE_PATTERN,
      examples: ['8m', '64m'],
      default: '8m',
      description: 'disk space for shipped error lines (deployments with shipLogs error) waiting for the hub; when full, the oldest are dropped (and counted)',
    }),
    healthTimeout: Type.String({ pattern: DURATION_PATTERN, examples: DURATION_EXAMPLES, default: '3m', description: 'how long a new container may take to answer /health (emulated platforms are slow)' }),
    minFreeDisk: Type.String({ pattern: SIZE_PATTERN, examples: SIZE_EXAMPLES, default: '512m', description: "pre-flight: the free space that must remain on Docker's data root after a pull" }),
    assumeMemory: Type.Optional(
      Type.String({
        pattern: SIZE_PATTERN,
        examples: ['2g', '512m'],
        description:
          'assume the device has this much memory for replicas, instead of reading it (for tests and capacity planning): the autoscaler adds a replica only if its memory limit fits in this less the limits of the replicas already running',
      }),
    ),
    memoryMargin: Type.String({
      pattern: SIZE_PATTERN,
      examples: SIZE_EXAMPLES,
      default: '128m',
      description: "memory the autoscaler keeps free: a replica is added only if its memory limit fits in the device's available memory less this (replicas without a memory limit are not guarded)",
    }),
    pullStallTimeout: Type.String({ pattern: DURATION_PATTERN, examples: DURATION_EXAMPLES, default: '2m', description: 'a pull with no progress for this long fails (and is retried)' }),
    logLevel: stringEnum(LOG_LEVELS, { default: 'info' }),
  },
  { additionalProperties: false },
);
export type AgentConfig = Static<typeof AgentConfigSchema>;

export const AGENT_ENV_PREFIX = 'EDGEML_AGENT_';

/** Shorter intervals would spend the device on fsyncs and the hub on tiny batches. */
const MIN_TELEMETRY_INTERVAL_MS = 1000;
/** A queue must hold one batch of the largest message the broker takes (plus the outbox's header). */
export const MIN_QUEUE_BYTES = HEADER_BYTES + MAX_ID_BYTES + MAX_MESSAGE_BYTES;

function refuse(message: string): never {
  throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${message}`);
}

export function loadAgentConfig(sources: ConfigSources): Readonly<AgentConfig> {
  const config = loadConfig({ schema: AgentConfigSchema, envPrefix: AGENT_ENV_PREFIX }, sources);
  // Limits the schema's patterns cannot say.
  if (parseDuration(config.telemetryInterval) < MIN_TELEMETRY_INTERVAL_MS) {
    refuse(`telemetryInterval (--telemetry-interval) must be at least 1s, not ${config.telemetryInterval}`);
  }
  for (const [key, flag] of [['telemetryQueue', '--telemetry-queue'], ['captureQueue', '--capture-queue'], ['feedbackQuota', '--feedback-quota'], ['logQueue', '--log-queue']] as const) {
    const size = config[key];
    if (size !== undefined && parseSize(size) < MIN_QUEUE_BYTES) {
      refuse(`${key} (${flag}) must be at least ${Math.ceil(MIN_QUEUE_BYTES / 1024)}k, room for one batch of the largest MQTT message (${formatBytes(MAX_MESSAGE_BYTES)}), not ${size}`);
    }
  }
  if (config.token !== undefined && config.tokenFile !== undefined) {
    refuse('token (--token, EDGEML_AGENT_TOKEN) and tokenFile (--token-file) both given: keep one');
  }
  if (config.auth === 'cert' && !config.hub.startsWith('mqtts://')) {
    refuse(`auth cert (--auth cert) needs an mqtts:// hub (--hub), not ${config.hub}: a client certificate is shown in the TLS handshake`);
  }
  const { host } = parseHostPort(config.gateway);
  if (config.gatewayTls === 'off' && !isLoopbackHost(host) && !config.allowPlainGateway) {
    refuse(`the gateway on ${config.gateway} would be plain HTTP off loopback (--gateway-tls off): service keys and inputs would cross the network in clear; use --gateway-tls auto, or add --allow-plain-gateway if that is really meant`);
  }
  if (config.advertiseUrl !== undefined) {
    const scheme = new URL(config.advertiseUrl).protocol;
    if (config.gatewayTls === 'auto' && scheme === 'http:') {
      refuse(`advertiseUrl (--advertise-url) ${config.advertiseUrl} is http:// but the gateway serves HTTPS (--gateway-tls auto): advertise https://, or use --gateway-tls off`);
    }
    if (config.gatewayTls === 'off' && scheme === 'https:') {
      refuse(`advertiseUrl (--advertise-url) ${config.advertiseUrl} is https:// but the gateway serves plain HTTP (--gateway-tls off): advertise http://, or use --gateway-tls auto`);
    }
  }
  const hub = new URL(config.hub);
  if (hub.protocol === 'mqtt:' && !isLoopbackHost(unbracket(hub.hostname)) && !config.allowPlainMqtt) {
    refuse(`the hub ${config.hub} is plain MQTT off loopback (--hub mqtt://): the device token would cross the network in clear; use mqtts://, or add --allow-plain-mqtt if that is really meant`);
  }
  return config;
}
