import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { formatHostPort, HOST_PORT_EXAMPLES, HOST_PORT_PATTERN, isLoopbackHost, parseHostPort, type HostPort } from '../shared/address.js';
import { loadConfig, type ConfigSources } from '../shared/config-loader.js';
import { LOG_LEVELS } from '../shared/logger.js';
import { DURATION_PATTERN, parseDuration } from '../shared/duration.js';
import { stringEnum } from '../shared/schema.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { formatBytes, parseSize, SIZE_EXAMPLES, SIZE_PATTERN } from '../shared/size.js';
import { DEFAULT_BROKER_LIMITS } from './broker/broker.js';
import { isHubCertificateName, splitSan } from './pki/names.js';

/** mqtt://HOST:PORT or mqtts://HOST:PORT (a bracketed IPv6 host allowed). */
const MQTT_URL_PATTERN = '^mqtts?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';

/** Whole days: the archive keeps and deletes whole (UTC) days. */
const RETENTION_PATTERN = '^[1-9][0-9]{0,4}d$';

export const HubConfigSchema = Type.Object(
  {
    data: Type.String({ minLength: 1, default: './.edgeml/hub', description: 'data directory' }),
    http: Type.String({ pattern: HOST_PORT_PATTERN, examples: HOST_PORT_EXAMPLES, default: '127.0.0.1:8080', description: 'REST API listen address' }),
    mqtt: Type.String({ pattern: HOST_PORT_PATTERN, examples: HOST_PORT_EXAMPLES, default: '127.0.0.1:1883', description: 'MQTT broker listen address' }),
    mqttTlsCert: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate for the MQTT listener: with mqttTlsKey, the broker speaks MQTT over TLS' })),
    mqttTlsKey: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key for the MQTT listener' })),
    mqttMaxPacket: Type.String({
      pattern: SIZE_PATTERN,
      examples: SIZE_EXAMPLES,
      default: `${DEFAULT_BROKER_LIMITS.maxPacketBytes / 1024}k`,
      description: 'largest MQTT packet a device may send once connected (at least the default: the largest telemetry batch); a larger one closes its connection',
    }),
    mqttMaxConnecting: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: DEFAULT_BROKER_LIMITS.maxConnectingPerAddress,
      description: 'MQTT connections from one address that may wait for their CONNECT at once; more are closed (raise it for many devices behind one NAT)',
    }),
    registry: Type.String({ pattern: HOST_PORT_PATTERN, examples: HOST_PORT_EXAMPLES, default: '127.0.0.1:5000', description: 'OCI registry for built images' }),
    maxUpload: Type.String({ pattern: SIZE_PATTERN, examples: SIZE_EXAMPLES, default: '2g', description: 'largest model upload; bigger ones get 413' }),
    maxArchiveFiles: Type.Integer({ minimum: 1, default: 10000, description: 'most entries in an uploaded directory' }),
    imagePrefix: Type.String({
      pattern: '^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$',
      default: 'edgeml',
      description: 'repository path under the registry: images are REGISTRY/PREFIX/MANIFEST',
    }),
    baseImageNode: Type.Optional(Type.String({ minLength: 1, description: 'base image for node runtimes (default REGISTRY/edgeml/runtime-node-base:TAG, TAG from images/base/versions.env)' })),
    baseImagePython: Type.Optional(Type.String({ minLength: 1, description: 'base image for python runtimes (default REGISTRY/edgeml/runtime-python-base:TAG)' })),
    extraCa: Type.Optional(Type.String({ minLength: 1, description: 'PEM bundle of extra CAs for dependency installs during builds (a build secret, never in the image)' })),
    smokeTimeout: Type.String({ pattern: DURATION_PATTERN, default: '5m', description: 'how long a built image may take to answer its sample, per platform' }),
    uploadIdleTimeout: Type.String({ pattern: DURATION_PATTERN, default: '60s', description: 'a model upload with no byte for this long is ended (408) and nothing is stored' }),
    telemetryDir: Type.Optional(Type.String({ minLength: 1, description: "where telemetry and captures are stored (the user's storage directory; default DATA/telemetry)" })),
    telemetryRetention: Type.String({ pattern: RETENTION_PATTERN, examples: ['30d', '7d'], default: '30d', description: 'days of telemetry and captures kept; older days are deleted' }),
    caCert: Type.Optional(Type.String({ minLength: 1, description: "an operator's own CA certificate (PEM) for the hub to sign with, with caKey; default: a CA the hub makes at first start in DATA/ca" })),
    caKey: Type.Optional(Type.String({ minLength: 1, description: "the private key (PEM) of caCert; it stays in this file" })),
    tls: Type.Optional(
      stringEnum(['auto', 'off'] as const, {
        description: "HTTPS for the REST API: auto signs a certificate with the hub's CA for the listen address and tlsSan names; off only on a loopback address (default: off on loopback, auto otherwise)",
      }),
    ),
    tlsCert: Type.Optional(Type.String({ minLength: 1, description: "an operator's own PEM certificate for the REST API (with tlsKey), instead of one the hub's CA signs" })),
    tlsKey: Type.Optional(Type.String({ minLength: 1, description: 'the PEM private key of tlsCert' })),
    tlsSan: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9.:*-]+(,[A-Za-z0-9.:*-]+)*$', examples: ['hub.example,10.0.4.2'], description: 'more DNS names and IP addresses (comma-separated) for the certificates the hub signs for itself (REST API and MQTT)' }),
    ),
    mqttTls: Type.Optional(
      stringEnum(['auto', 'off'] as const, {
        description: "MQTT over TLS: auto signs a certificate with the hub's CA (devices may then also authenticate with client certificates); off only on a loopback address (default: off on loopback, auto otherwise; mqttTlsCert/mqttTlsKey give an operator's own)",
      }),
    ),
    mqttAdvertise: Type.Optional(
      Type.String({
        pattern: MQTT_URL_PATTERN,
        examples: ['mqtts://hub.example:8883'],
        description: 'the broker URL devices connect to, as `device enroll` tells it (default: the mqtt listen address once bound): for a hub on 0.0.0.0, behind NAT or a proxy',
      }),
    ),
    deviceCertLifetime: Type.String({ pattern: DURATION_PATTERN, examples: ['30d', '7d'], default: '30d', description: 'lifetime of the certificates the hub signs for devices (gateway HTTPS, MQTT client); agents renew at two thirds' }),
    logLevel: stringEnum(LOG_LEVELS, { default: 'info' }),
  },
  { additionalProperties: false },
);
export type HubConfig = Static<typeof HubConfigSchema>;

export function retentionDays(config: Pick<HubConfig, 'telemetryRetention'>): number {
  return Number.parseInt(config.telemetryRetention, 10);
}

export const HUB_ENV_PREFIX = 'EDGEML_HUB_';

/** MQTT's remaining length stops just short of 256 MiB. */
const MQTT_MAX_PACKET_BYTES = 256 * 1024 ** 2;

export function loadHubConfig(sources: ConfigSources): Readonly<HubConfig> {
  const config = loadConfig({ schema: HubConfigSchema, envPrefix: HUB_ENV_PREFIX }, sources);
  // Limits the schema's patterns cannot say. Below the default, agents' largest batches would be
  // refused and sent again forever.
  const maxPacket = parseSize(config.mqttMaxPacket);
  if (maxPacket < DEFAULT_BROKER_LIMITS.maxPacketBytes || maxPacket > MQTT_MAX_PACKET_BYTES) {
    throw new EdgemlError(
      ErrorCodes.CONFIG_INVALID,
      `invalid configuration: mqttMaxPacket (--mqtt-max-packet) must be between ${formatBytes(DEFAULT_BROKER_LIMITS.maxPacketBytes)} (the largest telemetry message with its MQTT headers) and 256 MB, not ${config.mqttMaxPacket}`,
    );
  }
  const lifetime = parseDuration(config.deviceCertLifetime);
  if (lifetime < MIN_DEVICE_CERT_LIFETIME_MS || lifetime > MAX_DEVICE_CERT_LIFETIME_MS) {
    throw new EdgemlError(
      ErrorCodes.CONFIG_INVALID,
      `invalid configuration: deviceCertLifetime (--device-cert-lifetime) must be between 10s and 397d (what browsers and TLS clients accept), not ${config.deviceCertLifetime}`,
    );
  }
  for (const name of splitSan(config.tlsSan)) {
    if (!isHubCertificateName(name)) {
      throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: tlsSan (--tls-san) ${JSON.stringify(name)} is neither a DNS name (a leading *. allowed) nor an IP address`);
    }
  }
  listenerTls(config, 'http');
  const mqttTls = listenerTls(config, 'mqtt');
  if (config.mqttAdvertise !== undefined && config.mqttAdvertise.startsWith('mqtts:') !== (mqttTls !== 'off')) {
    throw new EdgemlError(
      ErrorCodes.CONFIG_INVALID,
      `invalid configuration: mqttAdvertise (--mqtt-advertise) ${config.mqttAdvertise} must be ${mqttTls === 'off' ? 'mqtt://' : 'mqtts://'}: the broker ${mqttTls === 'off' ? 'does not speak' : 'speaks'} TLS`,
    );
  }
  return config;
}

/**
 * The broker URL devices are told at enrollment: the advertised one, else the listen address as
 * bound (port 0 resolved). A wildcard listen address names no host a device could reach, so this
 * machine's host name stands in for it.
 */
export function advertisedBroker(config: Pick<HubConfig, 'mqttAdvertise'>, bound: HostPort, tls: boolean, hostName: () => string = hostname): string {
  if (config.mqttAdvertise !== undefined) return config.mqttAdvertise;
  const host = ['0.0.0.0', '::'].includes(bound.host) ? hostName() : bound.host;
  return `${tls ? 'mqtts' : 'mqtt'}://${formatHostPort({ host, port: bound.port })}`;
}

/** Below it an agent renews all the time; tests use 15s. */
export const MIN_DEVICE_CERT_LIFETIME_MS = 10_000;
/** The longest a TLS server certificate may live for browsers and Apple's TLS stack. */
export const MAX_DEVICE_CERT_LIFETIME_MS = 397 * 24 * 3600 * 1000;

function unreadable(flag: string, path: string, err: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
}

/** The absolute path of a file named in the config, checked readable now: a typo should not surface as a failure hours later. */
export async function readableConfigFile(flag: string, path: string): Promise<string> {
  const full = resolve(path);
  try {
    await access(full, constants.R_OK);
  } catch (err) {
    throw unreadable(flag, path, err);
  }
  return full;
}

/** The text of a file named in the config (`flag` names it in the error). */
export async function readConfigFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(resolve(path), 'utf8');
  } catch (err) {
    throw unreadable(flag, path, err);
  }
}

/** How a listener speaks TLS: not at all, with a certificate from the hub's CA, or with the operator's own. */
export type ListenerTls = 'off' | 'auto' | 'operator';

const TLS_KEYS = {
  http: { listen: 'http', mode: 'tls', cert: 'tlsCert', key: 'tlsKey', flag: '--tls', certFlag: '--tls-cert', keyFlag: '--tls-key' },
  mqtt: { listen: 'mqtt', mode: 'mqttTls', cert: 'mqttTlsCert', key: 'mqttTlsKey', flag: '--mqtt-tls', certFlag: '--mqtt-tls-cert', keyFlag: '--mqtt-tls-key' },
} as const;

/**
 * TLS is the default off loopback, and may be turned off only on loopback: credentials and model
 * inputs must not cross a network in clear because a flag was forgotten.
 */
export function listenerTls(config: Readonly<HubConfig>, listener: 'http' | 'mqtt'): ListenerTls {
  const k = TLS_KEYS[listener];
  const listen = config[k.listen];
  const loopback = isLoopbackHost(parseHostPort(listen).host);
  const mode = config[k.mode];
  const hasCert = config[k.cert] !== undefined;
  if (hasCert !== (config[k.key] !== undefined)) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${k.certFlag} and ${k.keyFlag} go together: give both, or neither for a certificate from the hub's CA`);
  }
  if (mode === 'off' && !loopback) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${k.flag} off is allowed on a loopback address only, and ${listen} is not one: leave ${k.flag} out (auto) or listen on 127.0.0.1`);
  }
  if (mode === 'off' && hasCert) throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${k.flag} off contradicts ${k.certFlag}: give one or the other`);
  if (hasCert) return 'operator';
  return (mode ?? (loopback ? 'off' : 'auto')) === 'auto' ? 'auto' : 'off';
}
