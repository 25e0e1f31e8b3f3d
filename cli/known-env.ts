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
 * `EDGEML_HUB_*` and `EDGEML_AGENT_*` set the hub's and the agent's configuration keys; their own
 * loaders refuse an unknown one (with a suggestion) when the process starts, so the CLI leaves them be.
 */
export const PROCESS_ENV_PREFIXES: readonly string[] = ['EDGEML_HUB_', 'EDGEML_AGENT_'];

/** One warning line (without the `edgeml: ` prefix) per EDGEML_* variable nobody reads. */
export function unknownEnvWarnings(env: Record<string, string | undefined>): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('EDGEML_') && !KNOWN_ENV.includes(name) && !PROCESS_ENV_PREFIXES.some((p) => name.startsWith(p)))
    .sort()
    .map((name) => {
      const near = closestName(name, KNOWN_ENV);
      return `warning: unknown environment variable ${name} is ignored${near ? ` (did you mean ${near}?)` : ''}`;
    });
}
