/**
 * The runtime base images that images/base/build.sh made offline from Debian packages (the rig runs
 * it; these tests never build): each is a linux/amd64 + linux/arm64 index in the rig's registry,
 * runs on both platforms (arm64 under QEMU), carries what the runtimes need and no docs.
 */
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { exec, type ExecResult } from '../helpers/exec.js';
import { rig, runtimeBaseImage } from '../helpers/rig.js';

const INDEX_TYPES = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';
const PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;
type Platform = (typeof PLATFORMS)[number];
type Runtime = 'node' | 'python';

interface IndexManifest {
  mediaType?: string;
  manifests?: Array<{ digest: string; platform?: { os: string; architecture: string } }>;
}


interface BaseImage {
  repo: string;
  tag: string;
  ref: string;
  index: IndexManifest;
}

const found = new Map<Runtime, Promise<BaseImage>>();

/** Reads the image's index from the registry; a missing image fails with what to run. */
function baseImage(runtime: Runtime): Promise<BaseImage> {
  let p = found.get(runtime);
  if (!p) {
    p = (async () => {
      const { registry } = rig();
      const repo = `edgeml/runtime-${runtime}-base`;
      const tag = runtimeBaseImage(runtime).split(':').at(-1)!;
      const missing = (why: string) =>
        new Error(`${repo}:${tag} is not in the rig's registry ${registry} (${why}): run \`bash scripts/rig/setup.sh\`, which builds the base images (images/base/build.sh)`);
      const res = await request(`http://${registry}/v2/${repo}/manifests/${tag}`, { headers: { accept: INDEX_TYPES } }).catch((err: unknown) => {
        throw missing(err instanceof Error ? err.message : String(err));
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw missing(`HTTP ${res.statusCode}`);
      }
      return { repo, tag, ref: `${registry}/${repo}:${tag}`, index: (await res.body.json()) as IndexManifest };
    })();
    found.set(runtime, p);
  }
  return p;
}

/** Runs CMD in the image for PLATFORM; --pull always fetches that platform's variant (containerd store). */
async function run(ref: string, platform: Platform, cmd: string[]): Promise<ExecResult> {
  return exec('docker', ['run', '--rm', '--pull', 'always', '--network', 'host', '--platform', platform, ref, ...cmd], { timeoutMs: 150_000 });
}

function ok(t: ExecutionContext, r: ExecResult, what: string): string {
  t.is(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
  return r.stdout.trim();
}

for (const runtime of ['node', 'python'] as const) {
  test(`runtime-${runtime}-base is an index with exactly linux/amd64 and linux/arm64`, async (t) => {
    const { index } = await baseImage(runtime);
    t.regex(index.mediaType ?? '', /image\.index|manifest\.list/);
    const platforms = (index.manifests ?? []).map((m) => `${m.platform?.os}/${m.platform?.architecture}`).sort();
    t.deepEqual(platforms, [...PLATFORMS]);
  });
}

// Docs, man pages and the rest that build.sh excludes; apt's lists and caches; npm; pip's PEP 668 marker.
const LEAN_CHECK = [
  'find /usr/share/doc -name "changelog*" -o -name "NEWS*" -o -name "README*"',
  'find /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian -mindepth 1 -not -type d',
  'find /var/lib/apt/lists /var/cache/apt -mindepth 1 -not -type d',
  'ls -d /usr/lib/python3*/EXTERNALLY-MANAGED /usr/bin/npm /usr/share/nodejs/npm /usr/bin/apt-get',
].join('; ');

for (const platform of PLATFORMS) {
  const [arch, machine] = platform === 'linux/arm64' ? ['arm64', 'aarch64'] : ['x64', 'x86_64'];

  test(`runtime-node-base runs Node 18 on ${platform}, with a CA bundle and no npm`, async (t) => {
    const { ref } = await baseImage('node');
    const out = ok(t, await run(ref, platform, ['node', '-e', 'console.log(process.arch, process.versions.node.split(".")[0])']), 'node -e');
    t.is(out, `${arch} 18`);
    const tls = ok(t, await run(ref, platform, ['node', '-e', 'console.log(require("tls").rootCertificates.length > 0, require("fs").statSync("/etc/ssl/certs/ca-certificates.crt").size > 0)']), 'ca check');
    t.is(tls, 'true true');
    const npm = await run(ref, platform, ['sh', '-c', 'command -v npm || echo none']);
    t.is(ok(t, npm, 'npm check'), 'none');
  });

  test(`runtime-python-base imports numpy and jsonschema and has pip on ${platform}`, async (t) => {
    const { ref } = await baseImage('python');
    const out = ok(
      t,
      await run(ref, platform, ['python3', '-c', 'import numpy, jsonschema, platform; print(platform.machine()); print(numpy.arange(4).sum())']),
      'python3 -c',
    );
    t.is(out, `${machine}\n6`);
    const pip = ok(t, await run(ref, platform, ['python3', '-m', 'pip', '--version']), 'pip --version');
    t.regex(pip, /^pip \d+/);
  });

  for (const runtime of ['node', 'python'] as const) {
    test(`runtime-${runtime}-base on ${platform} carries no changelogs, man pages, apt lists, npm or PEP 668 marker`, async (t) => {
      const { ref } = await baseImage(runtime);
      const r = await run(ref, platform, ['sh', '-c', `(${LEAN_CHECK}) 2>/dev/null; true`]);
      t.is(ok(t, r, 'lean check'), '', 'files that build.sh should have left out');
      // Copyright files are kept on purpose (licences).
      t.not(ok(t, await run(ref, platform, ['sh', '-c', 'ls /usr/share/doc/*/copyright | wc -l']), 'copyright files'), '0');
    });
  }
}
