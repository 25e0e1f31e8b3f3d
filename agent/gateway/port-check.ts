/**
 * Whether anything still accepts connections on a loopback port. A connection reset in the middle
 * of a request does not say whether the container died or only that connection did (a keep-alive
 * race, a model that crashed one request): a dead container's port refuses at once.
 */
import { connect } from 'node:net';

/** A loopback connect either completes or is refused within microseconds; longer is a port that does not answer. */
const CONNECT_TIMEOUT_MS = 1000;

export function accepts(port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}
