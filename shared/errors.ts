/**
 * One error class for the whole system. `code` is stable and relied on by scripts and tests;
 * messages may change. The hub maps codes to HTTP statuses in one place via `httpStatus`.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'EDGEML_E_CONFIG_INVALID',
  INTERNAL: 'EDGEML_E_INTERNAL',
  HISTOGRAM_MISMATCH: 'EDGEML_E_HISTOGRAM_MISMATCH',
  MESSAGE_INVALID: 'EDGEML_E_MESSAGE_INVALID',
  TOPIC_INVALID: 'EDGEML_E_TOPIC_INVALID',
  HUB_LISTEN_FAILED: 'HUB_E_LISTEN_FAILED',
  HUB_NOT_FOUND: 'HUB_E_NOT_FOUND',
  HUB_INVALID_REQUEST: 'HUB_E_INVALID_REQUEST',
  HUB_DEVICE_NOT_FOUND: 'HUB_E_DEVICE_NOT_FOUND',
  HUB_UNAUTHENTICATED: 'HUB_E_UNAUTHENTICATED',
  HUB_FORBIDDEN: 'HUB_E_FORBIDDEN',
  HUB_CONFLICT: 'HUB_E_CONFLICT',
  HUB_PAYLOAD_TOO_LARGE: 'HUB_E_PAYLOAD_TOO_LARGE',
  HUB_UNSUPPORTED_MEDIA_TYPE: 'HUB_E_UNSUPPORTED_MEDIA_TYPE',
  /** 431: the request's headers are over Node's limit (16 KiB); refused before any route. */
  HUB_HEADERS_TOO_LARGE: 'HUB_E_HEADERS_TOO_LARGE',
  /** 408: the request did not arrive in time (the whole request, or an upload that stopped sending). */
  HUB_REQUEST_TIMEOUT: 'HUB_E_REQUEST_TIMEOUT',
  HUB_DIGEST_MISMATCH: 'HUB_E_DIGEST_MISMATCH',
  HUB_MODEL_NOT_FOUND: 'HUB_E_MODEL_NOT_FOUND',
  HUB_MANIFEST_NOT_FOUND: 'HUB_E_MANIFEST_NOT_FOUND',
  HUB_MANIFEST_INVALID: 'HUB_E_MANIFEST_INVALID',
  HUB_APIKEY_NOT_FOUND: 'HUB_E_APIKEY_NOT_FOUND',
  HUB_IMAGE_NOT_FOUND: 'HUB_E_IMAGE_NOT_FOUND',
  HUB_DEPLOYMENT_NOT_FOUND: 'HUB_E_DEPLOYMENT_NOT_FOUND',
  HUB_ROLLOUT_NOT_FOUND: 'HUB_E_ROLLOUT_NOT_FOUND',
  HUB_TELEMETRY_NAME_INVALID: 'HUB_E_TELEMETRY_NAME_INVALID',
  HUB_TELEMETRY_RECORD_INVALID: 'HUB_E_TELEMETRY_RECORD_INVALID',
  HUB_TELEMETRY_ARCHIVE_FAILED: 'HUB_E_TELEMETRY_ARCHIVE_FAILED',
  HUB_STORE_CORRUPT: 'HUB_E_STORE_CORRUPT',
  HUB_STORE_VERSION: 'HUB_E_STORE_VERSION_UNSUPPORTED',
  /** A stored record no longer validates: the hub skips it and lists it at GET /api/v1/problems. */
  HUB_RECORD_INVALID: 'HUB_E_RECORD_INVALID',
  HUB_DATA_LOCKED: 'HUB_E_DATA_LOCKED',
  HUB_BUILD_FAILED: 'HUB_E_BUILD_FAILED',
  HUB_BUILD_CANCELLED: 'HUB_E_BUILD_CANCELLED',
  /** The image was built and pushed, but did not score its sample on some platform. */
  HUB_IMAGE_TEST_FAILED: 'HUB_E_IMAGE_TEST_FAILED',
  /** An `Idempotency-Key` used before, by the same API key, for a different request (422). */
  HUB_IDEMPOTENCY_MISMATCH: 'HUB_E_IDEMPOTENCY_MISMATCH',
  /** A tar archive with an unsafe or unsupported entry (absolute path, `..`, escaping link, device file). */
  ARCHIVE_INVALID: 'EDGEML_E_ARCHIVE_INVALID',
  /** A tar archive over the file-count or size limit. */
  ARCHIVE_TOO_LARGE: 'EDGEML_E_ARCHIVE_TOO_LARGE',
  /** The image has no variant for the device's platform: nothing was downloaded. */
  AGENT_PLATFORM_UNAVAILABLE: 'AGENT_E_PLATFORM_UNAVAILABLE',
  AGENT_DISK_FULL: 'AGENT_E_DISK_FULL',
  AGENT_TELEMETRY_BATCH_TOO_LARGE: 'AGENT_E_TELEMETRY_BATCH_TOO_LARGE',
  AGENT_PULL_FAILED: 'AGENT_E_PULL_FAILED',
  AGENT_START_FAILED: 'AGENT_E_START_FAILED',
  AGENT_HEALTH_FAILED: 'AGENT_E_HEALTH_FAILED',
  AGENT_LISTEN_FAILED: 'AGENT_E_LISTEN_FAILED',
  CLI_HUB_UNREACHABLE: 'CLI_E_HUB_UNREACHABLE',
  /** A device's gateway answered `edgeml score` with an error. */
  CLI_SCORE_FAILED: 'CLI_E_SCORE_FAILED',
  CLI_ROLLOUT_FAILED: 'CLI_E_ROLLOUT_FAILED',
  /** `edgeml score`: the hub says the service does not target the device, or the device does not run it. */
  CLI_SERVICE_NOT_ON_DEVICE: 'CLI_E_SERVICE_NOT_ON_DEVICE',
  /** `edgeml score`: the gateway URL the device reported is not one to send the service key to. */
  CLI_GATEWAY_REFUSED: 'CLI_E_GATEWAY_REFUSED',
  /** A CLI argument or local file the command cannot use (exit code 2). */
  CLI_INPUT_INVALID: 'CLI_E_INPUT_INVALID',
  /** Ctrl-C: the message says what was left running, if anything. */
  CLI_INTERRUPTED: 'CLI_E_INTERRUPTED',
  /** The hub's CA in DATA/ca (or --ca-cert/--ca-key) is damaged, or its key does not match its certificate. */
  HUB_CA_INVALID: 'HUB_E_CA_INVALID',
  /** A device's certificate request the hub will not sign (policy, bad signature, revoked device). */
  HUB_CSR_REFUSED: 'HUB_E_CSR_REFUSED',
  CLI_TLS: 'CLI_E_TLS', // a TLS connection to the hub or a gateway failed: unverified certificate, name mismatch, expired, HTTPS/HTTP mixed up
  /** The agent could not get a certificate from the hub (no answer, refused, or an answer that does not match its key). */
  AGENT_CERTIFICATE_FAILED: 'AGENT_E_CERTIFICATE_FAILED',
  /** The agent's --token-file cannot be read (or is empty) before a connection. */
  AGENT_TOKEN_FILE_UNREADABLE: 'AGENT_E_TOKEN_FILE_UNREADABLE',
  CLI_INSECURE_HUB: 'CLI_E_INSECURE_HUB', // an API key would go to a plain-http hub off loopback: refused unless --allow-insecure-http
  HUB_EVALUATION_FAILED: 'HUB_E_EVALUATION_FAILED', // a model's image could not be evaluated: it did not start healthy, or no eval row scored
  HUB_MODEL_UPDATE_NOT_FOUND: 'HUB_E_MODEL_UPDATE_NOT_FOUND', // GET /api/v1/model-updates/{id} of an id the hub never made
  HUB_RETRAINING_JOB_NOT_FOUND: 'HUB_E_RETRAINING_JOB_NOT_FOUND', // a retraining job name the hub does not have
  HUB_RETRAINING_RUN_NOT_FOUND: 'HUB_E_RETRAINING_RUN_NOT_FOUND', // a retraining run id the hub never made
  HUB_RETRAINING_FAILED: 'HUB_E_RETRAINING_FAILED', // a retraining run could not go on: no labelled rows, no model to replace, the trainer failed
  AGENT_TELEMETRY_LANE_FULL: 'AGENT_E_TELEMETRY_LANE_FULL', // an outbox lane that never drops (feedback) is at its quota: new batches are refused until the hub takes some
  HUB_TRAINER_NOT_FOUND: 'HUB_E_TRAINER_NOT_FOUND', // a trainer name or version the hub does not have
  HUB_TRAINER_INVALID: 'HUB_E_TRAINER_INVALID', // a trainer recipe the hub refuses: wrong file kind for the runtime, empty script, reserved env
  HUB_DATASET_NOT_FOUND: 'HUB_E_DATASET_NOT_FOUND', // a dataset name or version the hub does not have
  HUB_DATASET_INVALID: 'HUB_E_DATASET_INVALID', // a dataset file the hub refuses: a line that is not a JSON object with input and label (the error names the line)
  HUB_ROLLOUT_GATE_MEASURE_FAILED: 'HUB_E_ROLLOUT_GATE_MEASURE_FAILED', // some rollout gates could not be measured (archive, labels): retried with backoff, logged only
  HUB_DEVICE_OFFLINE: 'HUB_E_DEVICE_OFFLINE', // device logs asked of a device that is not online, or that did not answer (409)
  HUB_LOG_SESSIONS_FULL: 'HUB_E_LOG_SESSIONS_FULL', // a device already streams the most log sessions at once (409)
  AGENT_LOG_SESSIONS_FULL: 'AGENT_E_LOG_SESSIONS_FULL', // the agent already streams the most log sessions at once
  CLI_SERVE_FAILED: 'CLI_E_SERVE_FAILED', // `edgeml serve`: the runtime or its container exited before it was ready, or cannot serve (load or init() failed)
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface EdgemlErrorOptions {
  retryable?: boolean;
  httpStatus?: number;
  cause?: unknown;
  /** Structured details safe to show a user (never secrets). */
  details?: Record<string, unknown>;
}

export class EdgemlError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly httpStatus: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: EdgemlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgemlError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.httpStatus = options.httpStatus;
    this.details = options.details;
  }
}

export function isEdgemlError(err: unknown, code?: ErrorCode): err is EdgemlError {
  return err instanceof EdgemlError && (code === undefined || err.code === code);
}
