/**
 * `POST /v1/services/NAME/feedback` (issue 17): ground truth for the service's answers, with the
 * service's key. `{"requestId": "…", "label": …}` labels a request the gateway captured;
 * `{"input": {…}, "label": …}` is a labelled example given directly (for a service whose capture is
 * off), checked against the service's input schema. Answered 202 only once the label is durable in
 * the outbox's feedback lane; the telemetry sender then delivers it to the hub exactly once.
 *
 * The gateway's server authenticates and reads the body (at most FEEDBACK_MAX_BODY_BYTES); this
 * module decides, and throws GatewayErrors for the refusals.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { tooDeepAt } from '../../shared/json-depth.js';
import { MAX_FEEDBACK_ITEM_BYTES, REQUEST_ID_MAX_LENGTH, REQUEST_ID_PATTERN, type FeedbackItem } from '../../shared/protocol.js';
import type { InputSchemas } from '../feedback/input-schema.js';
import type { RequestIndex } from '../feedback/request-index.js';
import type { Replica, Route } from '../reconcile/routes.js';
import { GatewayCodes, GatewayError } from './errors.js';

export const FEEDBACK_MAX_BODY_BYTES = 64 * 1024;
/** Deeper than any input or label needs; a deeper one would overflow the stack of whatever walks it. */
const MAX_DEPTH = 64;
/** A full lane empties as the hub takes batches: a minute is a fair first wait. */
const FULL_RETRY_AFTER_S = '60';
const FIELDS = new Set(['requestId', 'input', 'label']);
const requestIdFits = new RegExp(REQUEST_ID_PATTERN);

export interface FeedbackOptions {
  index: Pick<RequestIndex, 'get'>;
  /** Resolves once the item is durable (FeedbackQueue). */
  queue: { add(item: FeedbackItem): Promise<void> };
  schemas: Pick<InputSchemas, 'check'>;
  clock: Clock;
  /** Request ids for inline examples; default randomUUID. */
  newId?: () => string;
}

/** One authenticated feedback request: the service's route now, a replica in rotation (for its schema), and the body. */
export interface FeedbackRequest {
  route: Route;
  replica: Replica | undefined;
  body: Buffer;
}

export interface FeedbackAccepted {
  requestId: string;
  accepted: true;
}

export type FeedbackHandler = (request: FeedbackRequest) => Promise<FeedbackAccepted>;

const invalid = (message: string) => new GatewayError(400, GatewayCodes.FEEDBACK_INVALID, message);

type Parsed = { requestId: string; label: unknown } | { input: unknown; label: unknown };

/**
 * The path of the first number JSON cannot carry (`1e400` parses as Infinity and would be sent
 * as null), or null. Recursive: called only once the depth is known to be bounded.
 */
function nonFiniteAt(value: unknown, path: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, child] of Object.entries(value)) {
    const found = nonFiniteAt(child, `${path}.${key}`);
    if (found !== null) return found;
  }
  return null;
}

/** The body as one of the two shapes, or a 400 naming what is wrong. */
export function parseFeedback(body: Buffer): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('the body is not JSON: send {"requestId": "…", "label": …} or {"input": {…}, "label": …}');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('the body must be a JSON object {"requestId": "…", "label": …} or {"input": {…}, "label": …}');
  const deep = tooDeepAt(value, MAX_DEPTH, 'body');
  if (deep) throw invalid(`${deep}: nested deeper than ${MAX_DEPTH} levels`);
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw invalid(`${unknown}: is not a known field (send requestId or input, and label)`);
  for (const [key, field] of Object.entries(fields)) {
    const huge = nonFiniteAt(field, key);
    if (huge !== null) throw invalid(`${huge}: must be a finite number (JSON has no Infinity)`);
  }
  if (!('label' in fields) || fields.label === null) throw invalid('label: is required (any JSON value but null)');
  const { requestId, input, label } = fields;
  if (requestId !== undefined && input !== undefined) throw invalid('send either requestId or input, not both');
  if (input !== undefined) return { input, label };
  if (requestId === undefined) throw invalid('requestId or input: is required');
  if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > REQUEST_ID_MAX_LENGTH || !requestIdFits.test(requestId)) {
    throw invalid(`requestId: must be the x-request-id of a scoring answer (1–${REQUEST_ID_MAX_LENGTH} visible ASCII characters)`);
  }
  return { requestId, label };
}

export function feedbackHandler(o: FeedbackOptions): FeedbackHandler {
  const newId = o.newId ?? randomUUID;

  /** The item for a label of a captured request: the revision and models that answered it. */
  const labelled = (service: string, requestId: string, label: unknown): FeedbackItem => {
    const captured = o.index.get(requestId);
    if (!captured) {
      throw new GatewayError(404, GatewayCodes.REQUEST_UNKNOWN, `request ${requestId} was not captured on this device, or is too old: send {"input": …, "label": …} instead`);
    }
    if (captured.service !== service) throw new GatewayError(409, GatewayCodes.REQUEST_OTHER_SERVICE, `request ${requestId} was made to another service, not ${service}`);
    return { ts: new Date(o.clock.now()).toISOString(), requestId, service, revision: captured.revision, models: [...captured.models], label };
  };

  /** The item for an inline example: checked against the schema of the revision serving now, which it is filed under. */
  const example = async ({ route, replica }: FeedbackRequest, input: unknown, label: unknown): Promise<FeedbackItem> => {
    const service = route.service;
    if (!replica) throw new GatewayError(503, GatewayCodes.NOT_READY, `service ${service} has no replica ready on this device to give its input schema`, { 'retry-after': '1' });
    const check = await o.schemas.check(service, route.revision, replica.port).catch((err: unknown) => {
      throw new GatewayError(502, GatewayCodes.UPSTREAM, `service ${service}: its input schema cannot be read from /swagger.json: ${(err as Error).message}`, {}, { cause: err });
    });
    const problem = check(input);
    if (problem !== undefined) throw invalid(problem);
    const models = route.models.map(({ name, version }) => ({ name, version }));
    return { ts: new Date(o.clock.now()).toISOString(), requestId: newId(), service, revision: route.revision, models, input, label };
  };

  return async (request) => {
    const parsed = parseFeedback(request.body);
    const item = 'requestId' in parsed ? labelled(request.route.service, parsed.requestId, parsed.label) : await example(request, parsed.input, parsed.label);
    // The body's bound nearly bounds the item; the models of a revision (up to 64) add the rest.
    const bytes = Buffer.byteLength(JSON.stringify(item));
    if (bytes > MAX_FEEDBACK_ITEM_BYTES) {
      throw new GatewayError(413, GatewayCodes.TOO_LARGE, `the label's item would be ${bytes} bytes, over MAX_FEEDBACK_ITEM_BYTES (${MAX_FEEDBACK_ITEM_BYTES}): send a smaller input or label`);
    }
    try {
      await o.queue.add(item);
    } catch (err) {
      if (isEdgemlError(err) && (err.code === ErrorCodes.AGENT_TELEMETRY_LANE_FULL || err.code === ErrorCodes.AGENT_DISK_FULL)) {
        throw new GatewayError(503, GatewayCodes.FEEDBACK_FULL, 'labels waiting for the hub fill the feedback queue (--feedback-quota): try again later', { 'retry-after': FULL_RETRY_AFTER_S }, { cause: err });
      }
      throw err;
    }
    return { requestId: item.requestId, accepted: true };
  };
}
