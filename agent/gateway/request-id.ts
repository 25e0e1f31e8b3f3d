import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { REQUEST_ID_MAX_LENGTH, REQUEST_ID_PATTERN } from '../../shared/protocol.js';

const fits = new RegExp(REQUEST_ID_PATTERN);

/**
 * The id a scoring request goes by: the client's own `x-request-id`, so it can match its logs with
 * captured samples and labels, or a new one. A malformed id is replaced rather than refused: a
 * client's tracing header must never cost it its answer, and one that would not validate in a
 * capture sample would spoil the whole batch.
 */
export function requestIdOf(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && sent.length <= REQUEST_ID_MAX_LENGTH && fits.test(sent) ? sent : randomUUID();
}
