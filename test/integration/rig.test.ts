/**
 * Proves the rig: a multi-arch image built with buildx from the offline base (no internet pull),
 * pushed to the real local registry as an index with both platforms, and its arm64 variant run
 * under QEMU emulation; and Debian's chromium driven by playwright-core, as the portal's tests use it.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { assertNoConsoleErrors, newPortalPage, openBrowser, pageProblems } from '../helpers/browser.js';
import { dockerClient } from '../helpers/docker.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface IndexManifest {
  mediaType: string;
  manifests: Array<{ digest: string; platform?: { os: string; architecture: string } }>;
}


const INDEX_TYPES = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';

test('buildx builds linux/amd64 + linux/arm64 from the offline base, pushes an index, and arm64 runs emulated', async (t) => {
  const { registry, baseImage } = rig();
  const repo = 'edgeml-test/rig-probe';
  const tag = `t${Date.now()}-${randomBytes(3).toString('hex')}`;
  const ref = `${registry}/${repo}:${tag}`;
  const docker = dockerClient();
  t.teardown(async () => {
    await docker.getImage(ref).remove({ force: true }).catch(() => undefined);
    await deleteFromRegistry(registry, repo, tag);
  });

  const context = await tempDir(t, 'edgeml-rig-probe-');
  await writeFile(
    join(context, 'Dockerfile'),
    [
      'ARG BASE',
      'FROM ${BASE}',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      // Runs under QEMU for arm64 at build time: proves binfmt works inside buildkit too.
      'RUN uname -m > /built-on',
      `RUN echo ${tag} > /tag`,
      'CMD ["uname", "-m"]',
      '',
    ].join('\n'),
  );

  const build = await exec(
    'docker',
    ['buildx', 'build', '--progress=plain', '--platform', 'linux/amd64,linux/arm64', '--network', 'host', '--build-arg', `BASE=${baseImage}`, '--push', '-t', ref, context],
    // Under ava's 3 min so a hung build fails here, with buildx's own output.
    { timeoutMs: 150_000 },
  );
  t.is(build.code, 0, `buildx failed:\n${build.stderr.slice(-3000)}`);

  const res = await request(`http://${registry}/v2/${repo}/manifests/${tag}`, { headers: { accept: INDEX_TYPES } });
  t.is(res.statusCode, 200);
  const index = (await res.body.json()) as IndexManifest;
  t.regex(index.mediaType, /image\.index|manifest\.list/);
  const platforms = index.manifests
    .map((m) => m.platform)
    .filter((p): p is { os: string; architecture: string } => !!p && p.os !== 'unknown')
    .map((p) => `${p.os}/${p.architecture}`)
    .sort();
  t.deepEqual(platforms, ['linux/amd64', 'linux/arm64']);

  const run = await exec('docker', ['run', '--rm', '--pull', 'always', '--platform', 'linux/arm64', '--network', 'host', ref], { timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.trim(), 'aarch64');
  const builtOn = await exec('docker', ['run', '--rm', '--platform', 'linux/arm64', '--network', 'host', ref, 'cat', '/built-on']);
  t.is(builtOn.stdout.trim(), 'aarch64');

  const amd64 = await exec('docker', ['run', '--rm', '--platform', 'linux/amd64', '--network', 'host', ref]);
  t.is(amd64.stdout.trim(), 'x86_64');
});

/** Pages for the browser probe: one that works, one that breaks in each way the recorder watches. */
const PROBE_PAGES: Record<string, string> = {
  '/ok': `<!doctype html><link rel="icon" href="data:,"><title>ok</title><button>Press</button><p role="status">waiting</p>
<script>document.querySelector('button').onclick = () => { document.querySelector('p').textContent = 'pressed'; };</script>`,
  '/broken': `<!doctype html><link rel="icon" href="data:,"><title>broken</title><p>broken</p><script src="/app-missing.js"></script>
<script>console.error('x'); fetch('/api/missing'); fetch('/api/boom'); setTimeout(() => { throw new Error('boom'); });</script>`,
};

test("Debian's chromium runs the pages through playwright-core, and the recorder catches console errors, page errors, failed and refused API calls", async (t) => {
  const server = createServer((req, res) => {
    const page = PROBE_PAGES[req.url ?? ''];
    if (page) res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    else res.writeHead(req.url === '/api/boom' ? 500 : 404, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await openBrowser(t);
  t.regex(browser.version(), /^\d+\./);

  const ok = await newPortalPage(t, browser, base);
  await ok.goto('/ok');
  await ok.getByRole('button', { name: 'Press' }).click();
  await ok.getByRole('status').filter({ hasText: 'pressed' }).waitFor({ timeout: 10_000 });
  assertNoConsoleErrors(t, ok);

  const broken = await newPortalPage(t, browser, base);
  await broken.goto('/broken');
  const problems = pageProblems(broken);
  await waitFor('the broken page\'s errors', () => problems.consoleErrors.length >= 1 && problems.pageErrors.length >= 1 && problems.failedApi.length >= 1 && problems.apiRefusals.length >= 1 && problems.failedRequests.length >= 1);
  // Chromium's console line for a failed /api fetch is left out (the response is recorded instead);
  // the one for the app's own missing file stays.
  t.deepEqual(
    problems.consoleErrors.map((line) => line.replace(/^Failed to load resource: .*(\(\S+\))$/, 'Failed to load resource $1')).sort(),
    [`Failed to load resource (${base}/app-missing.js)`, `x (${base}/broken)`],
  );
  t.regex(problems.pageErrors[0]!, /boom/);
  t.deepEqual(problems.failedApi, [`GET ${base}/api/boom: 500`]);
  t.deepEqual(problems.apiRefusals, [`GET ${base}/api/missing: 404`]);
  t.deepEqual(problems.failedRequests, [`GET ${base}/app-missing.js: 404`]);
});
