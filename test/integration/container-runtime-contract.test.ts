/**
 * The ContainerRuntime contract (test/helpers/container-runtime-contract.ts) against the dockerode
 * adapter and the rig's dockerd. Its images are built here from the rig's offline busybox base and
 * pushed to the rig's registry (referenced by digest, as the hub deploys them), once for the file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loopbackPorts } from '../../agent/reconcile/free-port.js';
import { httpHealthProbe } from '../../agent/reconcile/health-probe.js';
import { dockerRuntime } from '../../agent/runtime/docker.js';
import { containerRuntimeContract, type ContractImages } from '../helpers/container-runtime-contract.js';
import { exec } from '../helpers/exec.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';

const PLATFORM = 'linux/amd64';
const REPO = `edgeml-test-${randomBytes(4).toString('hex')}/runtime-contract`;

/** Each image's command; busybox's applets are installed first so `sh -c` finds them. */
const COMMANDS: Record<Exclude<keyof ContractImages, 'missing'>, string> = {
  // httpd forks to the background; the shell stays PID 1, and SIGTERM ends it between two sleeps.
  // The trap first: PID 1 ignores a SIGTERM it has no handler for, so once /health answers, a stop is graceful.
  serving: "trap 'exit 0' TERM && mkdir -p /www && echo ok > /www/health && httpd -p 127.0.0.1:$PORT -h /www && while :; do sleep 1; done",
  exiting: 'exit 3',
  pullable: "trap 'exit 0' TERM; while :; do sleep 1; done",
};

const pushed: string[] = [];
let built: Promise<ContractImages> | null = null;

async function build(tag: keyof typeof COMMANDS): Promise<string> {
  const { registry, baseImage } = rig();
  const context = await mkdtemp(join(tmpdir(), 'edgeml-runtime-contract-'));
  try {
    await writeFile(join(context, 'Dockerfile'), ['ARG BASE', 'FROM ${BASE}', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', `CMD ${JSON.stringify(['sh', '-c', COMMANDS[tag]])}`, ''].join('\n'));
    const ref = `${registry}/${REPO}:${tag}`;
    const meta = join(context, 'metadata.json');
    const result = await exec('docker', ['buildx', 'build', '--progress=plain', '--platform', PLATFORM, '--network', 'host', '--build-arg', `BASE=${baseImage}`, '--metadata-file', meta, '--push', '-t', ref, context], { timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`building the ${tag} image failed:\n${result.stderr.slice(-3000)}`);
    pushed.push(tag);
    // Only in the registry, as a deployed image is: the suite pulls what it needs by digest.
    await exec('docker', ['image', 'rm', '--force', ref]);
    const digest = (JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest'];
    return `${registry}/${REPO}@${digest}`;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

function images(): Promise<ContractImages> {
  built ??= (async () => ({
    serving: await build('serving'),
    exiting: await build('exiting'),
    pullable: await build('pullable'),
    missing: `${rig().registry}/${REPO}-missing@sha256:${'0'.repeat(64)}`,
  }))();
  return built;
}

test.after.always(async () => {
  const made = await built?.catch(() => null);
  const runtime = dockerRuntime();
  for (const ref of Object.values(made ?? {})) await runtime.removeImage(ref).catch(() => undefined);
  for (const tag of pushed) await deleteFromRegistry(rig().registry, REPO, tag);
});

containerRuntimeContract({
  name: 'docker',
  platform: PLATFORM,
  fixture: async () => ({ runtime: dockerRuntime(), health: httpHealthProbe, ports: loopbackPorts(), images: await images() }),
});
