/**
 * Reading a scoring request's body: bounded in size, and in time so a client that trickles its
 * body cannot keep a request (and its buffer) open indefinitely.
 */
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../../shared/clock.js';
import { ClientGone, GatewayCodes, GatewayError } from './errors.js';

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Resolves with the whole body, or rejects with a 413/408 GatewayError (the rest stays unread, for
 * the caller to discard after answering) or ClientGone.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits, clock: Clock): Promise<Buffer> {
  const tooLarge = () => new GatewayError(413, GatewayCodes.TOO_LARGE, `the body is over ${limits.maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err?: Error) => {
      clock.clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onClose);
      if (err) {
        req.pause();
        reject(err);
      } else {
        resolve(Buffer.concat(chunks));
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) settle(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => settle();
    const onClose = () => settle(new ClientGone());
    const timer = clock.setTimeout(
      () => settle(new GatewayError(408, GatewayCodes.BODY_TIMEOUT, `the body did not arrive within ${limits.timeoutMs / 1000} s`)),
      limits.timeoutMs,
    );
    req.on('data', onData).once('end', onEnd).once('close', onClose).once('error', onClose);
  });
}
