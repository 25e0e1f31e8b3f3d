/** `HOST:PORT` strings used by every listen and connect flag. Port 0 means "any free port". */
export const HOST_PORT_EXAMPLES = ['127.0.0.1:8080', '[::1]:8080'];
export const HOST_PORT_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(value: string): HostPort {
  const m = new RegExp(HOST_PORT_PATTERN).exec(value);
  const port = m ? Number(value.slice(value.lastIndexOf(':') + 1)) : NaN;
  if (!m || port > 65535) throw new Error(`${JSON.stringify(value)} is not HOST:PORT`);
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
