/**
 * The agent's pre-flight size read (agent/runtime/image-size.ts) against the rig's real registry:
 * the compressed bytes of one platform's layers and config, nothing downloaded.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { imageSizeFromRegistry, parseDigestRef } from '../../agent/runtime/image-size.js';
import { rig, runtimeBaseImage } from '../helpers/rig.js';

const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function manifest(registry: string, repo: string, ref: string): Promise<{ digest: string; body: any }> {
  const res = await request(`http://${registry}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  return { digest: String(res.headers['docker-content-digest']), body: await res.body.json() };
}

test('the size of one platform of a multi-platform image is its layers plus its config, as the registry lists them', async (t) => {
  const { registry } = rig();
  const [repo, tag] = runtimeBaseImage('node').slice(registry.length + 1).split(':') as [string, string];
  const index = await manifest(registry, repo, tag);
  const ref = `${registry}/${repo}@${index.digest}`;
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const entry = (index.body.manifests as Array<{ digest: string; platform: { os: string; architecture: string } }>).find((m) => `${m.platform.os}/${m.platform.architecture}` === platform)!;
    const one = (await manifest(registry, repo, entry.digest)).body as { config: { size: number }; layers: Array<{ size: number }> };
    const expected = one.layers.reduce((sum, l) => sum + l.size, one.config.size);
    t.is(await imageSizeFromRegistry(ref, platform), expected, platform);
    t.true(expected > 10_000_000, `${platform}: a runtime base image is tens of MB`);
  }
  t.is(await imageSizeFromRegistry(ref, 'linux/s390x'), null, 'a platform the image lacks');
});

test('unknown sizes are null: a tag (not a digest), a registry that wants credentials, one that is not there', async (t) => {
  const { registry } = rig();
  t.is(parseDigestRef(`${registry}/edgeml/x:latest`), null);
  t.is(await imageSizeFromRegistry(`${registry}/edgeml/x:latest`, 'linux/amd64'), null);

  const locked = createServer((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://auth.example/token"' });
    res.end();
  });
  await new Promise<void>((resolve) => locked.listen(0, '127.0.0.1', resolve));
  t.teardown(() => locked.close());
  const port = (locked.address() as AddressInfo).port;
  t.is(await imageSizeFromRegistry(`127.0.0.1:${port}/team/iris@sha256:${'a'.repeat(64)}`, 'linux/amd64'), null);
  locked.close();
  await new Promise((r) => setTimeout(r, 50));
  t.is(await imageSizeFromRegistry(`127.0.0.1:${port}/team/iris@sha256:${'a'.repeat(64)}`, 'linux/amd64'), null);
});
