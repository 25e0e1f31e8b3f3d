/**
 * The gateway's own answers: a status, a stable code clients and scripts match on (the CLI shows
 * it, telemetry counts by it), and headers such as `Retry-After`.
 */
export const GatewayCodes = {
  NOT_FOUND: 'GATEWAY_E_NOT_FOUND',
  NOT_READY: 'GATEWAY_E_NOT_READY',
  UNAUTHENTICATED: 'GATEWAY_E_UNAUTHENTICATED',
  TOO_LARGE: 'GATEWAY_E_TOO_LARGE',
  BODY_TIMEOUT: 'GATEWAY_E_BODY_TIMEOUT',
  QUEUE_FULL: 'GATEWAY_E_QUEUE_FULL',
  QUEUE_TIMEOUT: 'GATEWAY_E_QUEUE_TIMEOUT',
  UPSTREAM: 'GATEWAY_E_UPSTREAM',
  INTERNAL: 'GATEWAY_E_INTERNAL',
  FEEDBACK_INVALID: 'GATEWAY_E_FEEDBACK_INVALID',
  FEEDBACK_FULL: 'GATEWAY_E_FEEDBACK_FULL',
  REQUEST_UNKNOWN: 'GATEWAY_E_REQUEST_UNKNOWN',
  REQUEST_OTHER_SERVICE: 'GATEWAY_E_REQUEST_OTHER_SERVICE',
} as const;

export type GatewayCode = (typeof GatewayCodes)[keyof typeof GatewayCodes];

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: GatewayCode,
    message: string,
    readonly headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

/** The client went away before its answer: nobody to answer, nothing wrong on this side. */
export class ClientGone extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGone';
  }
}
