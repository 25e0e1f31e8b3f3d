/**
 * A private nginx (Debian's, /usr/sbin/nginx) as a plain reverse proxy in front of a scoring
 * container: one worker process and no master (`master_process off`, so the process we start is
 * the one serving and its CPU time is the proxy's), in the foreground, with a temp prefix and
 * config, listening on a loopback port only, keepalive connections to the upstream, no access log.
 * `location` is the path clients use (the gateway's), proxied to the container's `/score`; with
 * several upstream ports (replicas), nginx balances over them as `upstream` says (round robin by
 * default, `least_conn` when asked).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitReason, freePort, spawnPinned, stopChild, waitListening } from './processes.js';

export const NGINX = '/usr/sbin/nginx';

export type NginxOptions = (
  | { upstreamPort: number }
  | {
      /** One `server` per port, e.g. three scoring containers. */
      upstreamPorts: number[];
    }
) & {
  /** The path clients POST to, e.g. `/v1/services/bench/score`. */
  location: string;
  cores: string;
  /** Extra directives in the `http` block (e.g. a `limit_conn_zone`). */
  http?: string[];
  /** Extra directives in the location (e.g. `limit_conn`). */
  locationDirectives?: string[];
  /** Extra directives in the `upstream` block (e.g. `least_conn`). */
  upstream?: string[];
  /** Parameters after each upstream `server` address (e.g. `max_conns=1`). */
  serverParameters?: string;
};

export interface NginxProcess {
  scoreUrl: string;
  pid: number;
  /** The config it runs, for the results. */
  config: string;
  stop(): Promise<void>;
}

async function nginxVersion(): Promise<string> {
  const child = spawn(NGINX, ['-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr.on('data', (d: Buffer) => void (text += d.toString()));
  await once(child, 'exit');
  return /nginx\/(\S+)/.exec(text)?.[1] ?? 'unknown';
}

/** `nginx 1.22.1 (Debian)`, or a readable failure when it is not installed. */
export async function nginxLabel(): Promise<string> {
  try {
    return `nginx ${await nginxVersion()} (Debian)`;
  } catch {
    return 'nginx (not installed: run scripts/rig/setup.sh)';
  }
}

export async function startNginx(o: NginxOptions): Promise<NginxProcess> {
  const prefix = await mkdtemp(join(tmpdir(), 'edgeml-bench-nginx-'));
  await mkdir(join(prefix, 'tmp'));
  const port = await freePort();
  const servers = ('upstreamPorts' in o ? o.upstreamPorts : [o.upstreamPort]).map((p) => `server 127.0.0.1:${p}${o.serverParameters ? ` ${o.serverParameters}` : ''};`);
  const config = [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${join(prefix, 'tmp', 'body')};`,
    `  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};`,
    '  keepalive_requests 100000;',
    ...(o.http ?? []).map((d) => `  ${d}`),
    `  upstream scorer { ${[...(o.upstream ?? []), ...servers].join(' ')} keepalive 64; keepalive_requests 100000; }`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name bench;',
    `    location = ${o.location} {`,
    ...(o.locationDirectives ?? []).map((d) => `      ${d}`),
    '      proxy_pass http://scorer/score;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  const file = join(prefix, 'nginx.conf');
  await writeFile(file, config);
  const child = spawnPinned(o.cores, NGINX, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  let spawnError: Error | null = null;
  child.once('error', (err) => void (spawnError = err));
  const stop = async () => {
    // QUIT: graceful; KILL after a bound.
    if (!spawnError) await stopChild(child, 'SIGQUIT', 5000);
    await rm(prefix, { recursive: true, force: true });
  };
  try {
    await waitListening('nginx', port, 10_000, () => {
      if (spawnError) return (spawnError as Error).message;
      const why = exitReason(child);
      return why === null ? null : `${why} ${stderr.trim()}`;
    });
    return { scoreUrl: `http://127.0.0.1:${port}${o.location}`, pid: child.pid!, config, stop };
  } catch (err) {
    const log = await readFile(join(prefix, 'error.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}${log ? `\nnginx error.log:\n${log.slice(-2000)}` : ''}`, { cause: err });
  }
}
