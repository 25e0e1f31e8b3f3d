/**
 * Every EDGEML_* environment variable the project reads anywhere (CLI, hub, agent, runtime images,
 * generated clients, scripts, tests, benches), so the CLI can warn about a mistyped one.
 * test/unit/cli-known-env.test.ts greps the repository and fails when a name is missing here.
 */
import { closestName } from '../shared/did-you-mean.js';

export const KNOWN_ENV: readonly string[] = [
  // the CLI
  'EDGEML_HUB',
  'EDGEML_API_KEY',
  'EDGEML_API_KEY_FILE',
  'EDGEML_CA',
  'EDGEML_CONFIG',
  'EDGEML_CONFIG_DIR',
  'EDGEML_CONTEXT',
  'EDGEML_DEBUG',
  // inside scoring and training containers (images/)
  'EDGEML_APP_DIR',
  'EDGEML_APP_NAME',
  'EDGEML_APP_VERSION',
  'EDGEML_MODEL_DIR',
  'EDGEML_MAX_BODY_BYTES',
  'EDGEML_DRAIN_SECONDS',
  'EDGEML_PARAMS',
  'EDGEML_TRAIN_DATA',
  'EDGEML_EVAL_DATA',
  'EDGEML_OUTPUT_DIR',
  'EDGEML_LOG_TAG',
  'EDGEML_BUILD_OWNER',
  // generated service clients
  'EDGEML_SERVICE_KEY',
  'EDGEML_SERVICE_KEY_FILE',
  'EDGEML_SERVICE_CA',
  // the rig, tests and benches
  'EDGEML_BIN',
  'EDGEML_POLL_MS',
  'EDGEML_RIG_DIR',
  'EDGEML_RIG_REGISTRY',
  'EDGEML_RIG_MOSQUITTO',
  'EDGEML_RIG_BASE_IMAGE',
  'EDGEML_TEST_ARTEFACTS',
  'EDGEML_TEST_VARIANT',
  'EDGEML_TEST_TRAINER_SECRET',
  'EDGEML_FUZZ_SEED',
  'EDGEML_FUZZ_SECONDS',
  'EDGEML_FUZZ_ITERATIONS',
  'EDGEML_QUICKSTART_DIR',
  'EDGEML_QUICKSTART_DEVICE',
  'EDGEML_PORTAL_SCREENSHOTS',
];

/**
 * The hub's and the agent's configuration variables (`EDGEML_HUB_HTTP` sets `http`, …, and
 * `…_CONFIG` names the config file). Written out rather than derived from hub/config.ts and
 * agent/config.ts, so a client command does not load the hub's and the agent's code at start-up;
 * test/unit/cli-known-env.test.ts checks these lists against both schemas.
 */
export const HUB_ENV: readonly string[] = [
  'EDGEML_HUB_DATA', 'EDGEML_HUB_HTTP', 'EDGEML_HUB_MQTT', 'EDGEML_HUB_MQTT_TLS_CERT', 'EDGEML_HUB_MQTT_TLS_KEY',
  'EDGEML_HUB_MQTT_MAX_PACKET', 'EDGEML_HUB_MQTT_MAX_CONNECTING', 'EDGEML_HUB_REGISTRY', 'EDGEML_HUB_MAX_UPLOAD',
  'EDGEML_HUB_MAX_ARCHIVE_FILES', 'EDGEML_HUB_IMAGE_PREFIX', 'EDGEML_HUB_BASE_IMAGE_NODE',
  'EDGEML_HUB_BASE_IMAGE_PYTHON', 'EDGEML_HUB_EXTRA_CA', 'EDGEML_HUB_SMOKE_TIMEOUT', 'EDGEML_HUB_UPLOAD_IDLE_TIMEOUT',
  'EDGEML_HUB_TELEMETRY_DIR', 'EDGEML_HUB_TELEMETRY_RETENTION', 'EDGEML_HUB_CA_CERT', 'EDGEML_HUB_CA_KEY',
  'EDGEML_HUB_TLS', 'EDGEML_HUB_TLS_CERT', 'EDGEML_HUB_TLS_KEY', 'EDGEML_HUB_TLS_SAN', 'EDGEML_HUB_MQTT_TLS',
  'EDGEML_HUB_MQTT_ADVERTISE', 'EDGEML_HUB_DEVICE_CERT_LIFETIME', 'EDGEML_HUB_LOG_LEVEL', 'EDGEML_HUB_CONFIG',
];

export const AGENT_ENV: readonly string[] = [
  'EDGEML_AGENT_HUB', 'EDGEML_AGENT_DEVICE_ID', 'EDGEML_AGENT_TOKEN', 'EDGEML_AGENT_TOKEN_FILE', 'EDGEML_AGENT_AUTH',
  'EDGEML_AGENT_HUB_CA', 'EDGEML_AGENT_DATA', 'EDGEML_AGENT_GATEWAY', 'EDGEML_AGENT_GATEWAY_TLS',
  'EDGEML_AGENT_ALLOW_PLAIN_GATEWAY', 'EDGEML_AGENT_ALLOW_PLAIN_MQTT', 'EDGEML_AGENT_ADVERTISE_URL',
  'EDGEML_AGENT_PLATFORM', 'EDGEML_AGENT_TELEMETRY_INTERVAL', 'EDGEML_AGENT_TELEMETRY_QUEUE',
  'EDGEML_AGENT_CAPTURE_QUEUE', 'EDGEML_AGENT_FEEDBACK_QUOTA', 'EDGEML_AGENT_LOG_QUEUE', 'EDGEML_AGENT_HEALTH_TIMEOUT',
  'EDGEML_AGENT_MIN_FREE_DISK', 'EDGEML_AGENT_ASSUME_MEMORY', 'EDGEML_AGENT_MEMORY_MARGIN',
  'EDGEML_AGENT_PULL_STALL_TIMEOUT', 'EDGEML_AGENT_LOG_LEVEL', 'EDGEML_AGENT_CONFIG',
];

export const PROCESS_ENV_PREFIXES: readonly string[] = ['EDGEML_HUB_', 'EDGEML_AGENT_'];

const ALL_KNOWN: readonly string[] = [...KNOWN_ENV, ...HUB_ENV, ...AGENT_ENV];

/**
 * The name meant by an unknown one. Under a hub or agent prefix, the nearest of that process's
 * keys (compared without the prefix, so EDGEML_HUB_URL is not "near" EDGEML_HUB_TLS); failing that,
 * the nearest name of the others: EDGEML_HUB_URL was most likely meant as the client's EDGEML_HUB.
 */
function meant(name: string): string | undefined {
  const prefix = PROCESS_ENV_PREFIXES.find((p) => name.startsWith(p));
  if (prefix === undefined) return closestName(name, ALL_KNOWN);
  const own = ALL_KNOWN.filter((n) => n.startsWith(prefix));
  const near = closestName(name.slice(prefix.length), own.map((n) => n.slice(prefix.length)));
  return near !== undefined ? prefix + near : closestName(name, ALL_KNOWN.filter((n) => !own.includes(n)));
}

/** One warning line (without the `edgeml: ` prefix) per EDGEML_* variable nobody reads. */
export function unknownEnvWarnings(env: Record<string, string | undefined>): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('EDGEML_') && !ALL_KNOWN.includes(name))
    .sort()
    .map((name) => {
      const near = meant(name);
      return `warning: unknown environment variable ${name} is ignored${near ? ` (did you mean ${near}?)` : ''}`;
    });
}
