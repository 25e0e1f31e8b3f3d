/**
 * The scoring runtime contract (test/helpers/runtime-contract.ts) against hub-built images: a real
 * hub builds the fixture apps into linux/amd64 images and pushes them to the rig's registry, they
 * are pulled, and the same contract suite runs against each runtime as a container. Needs Docker
 * and the rig; the host-process run of the suite is runtime-contract.test.ts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { FINISHED_STATUSES, type Image } from '../../shared/api/images.js';
import type { Runtime } from '../../shared/api/manifests.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { EdgemlProcess, startHub } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { contractSuite, FIXTURE_FILES, FIXTURES, MODELS, runtimeInstance, type FixtureApp, type RuntimeDescriptor } from '../helpers/runtime-contract.js';
import { waitFor } from '../helpers/wait.js';

/** `runtime/app` → the image a real hub built for it (linux/amd64). */
const builtImages = new Map<string, string>();
const pushedTags: Array<{ registry: string; repo: string; tag: string }> = [];

/**
 * A runtime run as a container from its built image, attached, so its output is the server's and
 * `docker run` proxies the stop signal and exits with the server's code. Env values that are
 * absolute paths (the init gate) are bind-mounted, readable by the image's unprivileged user.
 */
function containerRuntime(opts: Omit<RuntimeDescriptor, 'start'> & { runtime: Runtime }): RuntimeDescriptor {
  return {
    ...opts,
    async start(t, app, env = {}) {
      const ref = builtImages.get(`${opts.runtime}/${app}`);
      if (!ref) throw new Error(`no image was built for ${opts.runtime}/${app}`);
      const name = `edgeml-contract-${randomBytes(4).toString('hex')}`;
      const mounts: string[] = [];
      for (const value of Object.values(env)) {
        if (!isAbsolute(value)) continue;
        await chmod(dirname(value), 0o755);
        mounts.push('--volume', `${dirname(value)}:${dirname(value)}:ro`);
      }
      const envArgs = Object.entries({ HOST: '127.0.0.1', PORT: '0', ...env }).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
      const child = spawn('docker', ['run', '--rm', '--name', name, '--network', 'host', '--platform', 'linux/amd64', ...envArgs, ...mounts, ref], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const proc = new EdgemlProcess(child);
      t.teardown(async () => {
        await exec('docker', ['rm', '--force', name]);
        await proc.kill('SIGKILL');
      });
      const listening = await proc.waitForLog('listening', (l) => l.msg === 'listening', 60_000);
      return runtimeInstance(proc, listening.port);
    },
  };
}

const CONTAINER_APPS: Array<{ runtime: Runtime; app: FixtureApp; score: string; deps?: string }> = [
  { runtime: 'node', app: 'linear', score: 'score.js', deps: 'package.json' },
  { runtime: 'node', app: 'syntax-error', score: 'score.js' },
  { runtime: 'python', app: 'linear', score: 'score.py' },
  { runtime: 'python', app: 'syntax-error', score: 'score.py' },
];

test.before('a real hub builds the fixture apps into images', async (t) => {
  t.timeout(15 * 60_000);
  // Hooks have no t.teardown: the hub (and its data directory) go when the hook ends.
  const cleanups: Array<() => unknown> = [];
  try {
    await buildFixtureImages(t, { teardown: (fn: () => unknown) => cleanups.push(fn) } as unknown as ExecutionContext);
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
});

async function buildFixtureImages(t: ExecutionContext, scope: ExecutionContext): Promise<void> {
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(scope, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, 15 * 60_000);
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(MODELS, 'iris-linear'), '--json'));
  const queued: Array<{ key: string; id: number }> = [];
  for (const { runtime, app, score, deps } of CONTAINER_APPS) {
    const dir = join(FIXTURES, runtime, app);
    const manifest = `${runtime}-${app}`;
    const depsArgs = deps ? ['--deps', join(dir, deps)] : [];
    jsonOf(t, await cli('manifest', 'create', manifest, '--model', 'iris-linear:1', '--runtime', runtime, '--score', join(dir, score), '--schema', join(FIXTURES, 'schema.json'), ...depsArgs, '--json'));
    const image = jsonOf<Image>(t, await cli('image', 'build', manifest, '--platform', 'linux/amd64', '--no-wait', '--json'));
    queued.push({ key: `${runtime}/${app}`, id: image.id });
  }
  for (const { key, id } of queued) {
    // A syntax-error app fails its smoke check, but its image is pushed all the same. A build
    // takes minutes: once a second is often enough to ask.
    const image = await waitFor(
      `the image for ${key}`,
      async () => {
        const { body } = await api<Image>(hub, 'GET', `/api/v1/images/${id}`, { key: hub.adminKey });
        return FINISHED_STATUSES.includes(body.status) ? body : undefined;
      },
      15 * 60_000,
      1000,
    );
    if (!image.ref) throw new Error(`the image for ${key} was not pushed: ${image.error?.message ?? image.status}`);
    const ref = `${image.repository}@${image.platforms['linux/amd64']!}`;
    for (const tag of image.tags) pushedTags.push({ registry, repo: image.repository.slice(registry.length + 1), tag });
    const pulled = await exec('docker', ['pull', '--quiet', '--platform', 'linux/amd64', ref]);
    if (pulled.code !== 0) throw new Error(`docker pull ${ref}: ${pulled.stderr}`);
    builtImages.set(key, ref);
  }
}

test.after.always('remove the fixture images from the registry', async () => {
  for (const { registry, repo, tag } of pushedTags) await deleteFromRegistry(registry, repo, tag).catch(() => undefined);
});

for (const runtime of ['node', 'python'] as const) {
  contractSuite(
    containerRuntime({
      name: `${runtime} image`,
      runtime,
      apps: CONTAINER_APPS.filter((a) => a.runtime === runtime).map((a) => a.app),
      ...FIXTURE_FILES[runtime],
    }),
  );
}
