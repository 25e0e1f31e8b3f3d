/** `HOST:PORT` strings used by every listen and connect flag. Port 0 means "any free port". */
import { EdgemlError, ErrorCodes } from './errors.js';

export const HOST_PORT_EXAMPLES = ['127.0.0.1:8080', '[::1]:8080'];
// The port alternatives spell out 0-65535 so the schema alone rejects 99999.
const PORT = '([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
export const HOST_PORT_PATTERN = `^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):${PORT}$`;

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(value: string): HostPort {
  const m = new RegExp(HOST_PORT_PATTERN).exec(value);
  if (!m) throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `${JSON.stringify(value)} is not HOST:PORT (like ${HOST_PORT_EXAMPLES[0]})`);
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port: Number(m[2]) };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `::1` for `[::1]` (how URL.hostname spells an IPv6 literal); any other host as it is. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** True for 127.0.0.0/8, ::1 and `localhost`: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
