/**
 * A trivial scoring container for the gateway benchmarks: edgeml's real Node runtime server
 * (images/runtime-node, bind-mounted) on the rig's runtime base image (Debian's Node), with a tiny
 * score.js and schema, host networking on a loopback port, pinned to the system-under-test cores.
 * It is what a hub-built image runs, without a build: the same base, the same server and Ajv, only
 * mounted instead of copied into layers.
 *
 * `serviceMs` > 0 makes the model take that long per request, one request at a time (a promise
 * chain in score.js, a timer rather than a busy loop, so the machine's cores stay free for the
 * gateway and the load generator): the container's capacity is then 1000 / serviceMs requests/s
 * whatever the concurrency, like a model on a single accelerator.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { runtimeBaseImage } from '../../test/helpers/rig.js';
import { freePort } from './processes.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

export interface ScoringContainer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The container's main process on the host (for its CPU time in /proc). */
  pid: number;
  stop(): Promise<void>;
}

function scoreJs(serviceMs: number): string {
  if (serviceMs <= 0) {
    return `module.exports = { init() {}, run(input) { return { y: input.x * 2 }; } };\n`;
  }
  return [
    `// One request at a time, ${serviceMs} ms each: capacity ${Math.round(1000 / serviceMs)} requests/s.`,
    'let tail = Promise.resolve();',
    `const busy = () => new Promise((resolve) => setTimeout(resolve, ${serviceMs}));`,
    'module.exports = {',
    '  init() {},',
    '  async run(input) {',
    '    const turn = tail.then(busy);',
    '    tail = turn;',
    '    await turn;',
    '    return { y: input.x * 2 };',
    '  },',
    '};',
    '',
  ].join('\n');
}

const SCHEMA = {
  input: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] },
  output: { type: 'object', properties: { y: { type: 'number' } } },
  sample: { x: 1 },
};

export const SAMPLE_BODY = JSON.stringify(SCHEMA.sample);

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await request(`${url}/health`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200) return;
      last = `status ${res.statusCode}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the scoring container at ${url} was not healthy within ${timeoutMs} ms (${last})`);
}

export async function startScoringContainer(o: { cores: string; serviceMs?: number; log: (m: string) => void }): Promise<ScoringContainer> {
  const app = await mkdtemp(join(tmpdir(), 'edgeml-bench-app-'));
  // The server runs as nobody, as in a built image.
  await chmod(app, 0o755);
  await writeFile(join(app, 'score.js'), scoreJs(o.serviceMs ?? 0), { mode: 0o644 });
  await writeFile(join(app, 'schema.json'), JSON.stringify(SCHEMA), { mode: 0o644 });
  // Host networking: the container binds the port itself.
  const port = await freePort();
  const name = `edgeml-bench-scorer-${process.pid}-${port}`;
  const image = runtimeBaseImage('node');
  let started = false;
  const stop = async () => {
    if (started) await run('docker', ['rm', '-f', name], { timeout: 30_000 }).catch(() => undefined);
    await rm(app, { recursive: true, force: true });
  };
  try {
    const args = [
      'run', '-d', '--rm', '--name', name, '--network', 'host', '--cpuset-cpus', o.cores, '--user', '65534:65534',
      '--label', 'io.edgeml.bench=1',
      '-e', `PORT=${port}`, '-e', 'HOST=127.0.0.1', '-e', 'NODE_ENV=production',
      '-e', 'EDGEML_APP_DIR=/opt/edgeml/app', '-e', 'EDGEML_MODEL_DIR=/opt/edgeml/models',
      '-v', `${join(REPO, 'images', 'runtime-node')}:/opt/edgeml/runtime:ro`,
      // The runtime's Ajv: Node finds /opt/edgeml/node_modules from /opt/edgeml/runtime/server.mjs.
      '-v', `${join(REPO, 'node_modules')}:/opt/edgeml/node_modules:ro`,
      '-v', `${app}:/opt/edgeml/app:ro`,
      image, 'node', '/opt/edgeml/runtime/server.mjs',
    ];
    started = true;
    await run('docker', args, { timeout: 120_000 });
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(url, 30_000);
    const { stdout } = await run('docker', ['inspect', '-f', '{{.State.Pid}}', name], { timeout: 30_000 });
    o.log(`scoring container ${name} on ${url} (${image}, cores ${o.cores}${o.serviceMs ? `, ${o.serviceMs} ms per request, one at a time` : ''})`);
    return { url, port, pid: Number(stdout.trim()), stop };
  } catch (err) {
    const logs = await run('docker', ['logs', '--tail', '20', name], { timeout: 10_000 }).then((r) => r.stdout + r.stderr).catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}${logs ? `\ncontainer log:\n${logs}` : ''}`, { cause: err });
  }
}
