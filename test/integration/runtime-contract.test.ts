/**
 * The scoring runtime contract (test/helpers/runtime-contract.ts) against both scoring servers run
 * as host processes: node and python3 only, no Docker. The same suite runs against hub-built
 * images in runtime-contract-images.test.ts.
 */
import { spawn } from 'node:child_process';
import { access, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { limitConcurrency } from '../helpers/concurrency.js';
import { EdgemlProcess, tempDir } from '../helpers/edgeml-process.js';
import { contractSuite, FIXTURE_FILES, FIXTURES, MODELS, ROOT, runtimeInstance, type RuntimeDescriptor } from '../helpers/runtime-contract.js';

/**
 * Every test of the file starts its own server at the same moment: start-ups take turns, so each
 * one's deadline measures that server, not thirty start-ups sharing two cores.
 */
const startups = limitConcurrency(2);

/** A runtime started as a host process: `command args…` with the app copied to a temp dir. */
function hostRuntime(opts: Omit<RuntimeDescriptor, 'start'> & { command: string; args: string[]; fixtureDir: string; env?: Record<string, string> }): RuntimeDescriptor {
  return {
    ...opts,
    async start(t, app, env = {}) {
      // Outside the repository (whose package.json says "type": "module"), like /opt/edgeml/app.
      const appDir = join(await tempDir(t, `edgeml-runtime-${opts.name}-`), 'app');
      await cp(join(opts.fixtureDir, app), appDir, { recursive: true });
      // An app without its own schema.json gets the shared one.
      if (!(await access(join(appDir, 'schema.json')).then(() => true, () => false))) await cp(join(FIXTURES, 'schema.json'), join(appDir, 'schema.json'));
      const { proc, listening } = await startups(async () => {
        const child = spawn(opts.command, opts.args, {
          env: { ...process.env, ...opts.env, HOST: '127.0.0.1', PORT: '0', EDGEML_APP_DIR: appDir, EDGEML_MODEL_DIR: MODELS, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const proc = new EdgemlProcess(child);
        t.teardown(() => proc.kill('SIGKILL'));
        return { proc, listening: await proc.waitForLog('listening', (l) => l.msg === 'listening') };
      });
      t.is(typeof listening.port, 'number');
      return runtimeInstance(proc, listening.port);
    },
  };
}

// The image runs Debian's Node 18, which has no module-syntax detection and no require(esm): the
// host's Node is told to behave the same, so an ES-module score.js without "type": "module" takes
// the same path as in the image.
const NODE18_FLAGS = ['--no-experimental-detect-module', '--no-experimental-require-module'].filter((f) => process.allowedNodeEnvironmentFlags.has(f));

const RUNTIMES: RuntimeDescriptor[] = [
  hostRuntime({
    name: 'node',
    apps: ['linear', 'syntax-error', 'commonjs', 'esm-bare', 'extras', 'extras-cjs'],
    ...FIXTURE_FILES.node,
    command: process.execPath,
    args: [...NODE18_FLAGS, join(ROOT, 'images/runtime-node/server.mjs')],
    fixtureDir: join(FIXTURES, 'node'),
  }),
  hostRuntime({
    name: 'python',
    apps: ['linear', 'syntax-error', 'extras', 'dataframe'],
    ...FIXTURE_FILES.python,
    command: 'python3',
    args: [join(ROOT, 'images/runtime-python/server.py')],
    fixtureDir: join(FIXTURES, 'python'),
    env: { PYTHONDONTWRITEBYTECODE: '1' },
  }),
];

for (const runtime of RUNTIMES) contractSuite(runtime);
