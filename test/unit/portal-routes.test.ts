/**
 * The portal's routes on a bare server: redirects keep a shared link's query, and an install
 * without the built portal says how to build it instead of serving nothing.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { createHubFastify } from '../../hub/http/server.js';
import { portalRoutes } from '../../hub/http/portal.js';
import { createLogger } from '../../shared/logger.js';

async function serverWith(root: string | null) {
  const app = createHubFastify(createLogger({ name: 'test', level: 'silent' }));
  await app.register(portalRoutes, { root });
  await app.ready();
  return app;
}

test('/ and /ui redirect to /ui/ keeping the query', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgeml-portal-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'assets'));
  await writeFile(join(root, 'index.html'), '<div id="app"></div>');
  await writeFile(join(root, 'assets', 'app.js'), 'export {};');
  const app = await serverWith(root);
  for (const [url, location] of [
    ['/', '/ui/'],
    ['/ui', '/ui/'],
    ['/ui?label=site=a&q=gw', '/ui/?label=site=a&q=gw'],
    ['/?x=1', '/ui/?x=1'],
  ] as const) {
    const res = await app.inject({ url });
    t.is(res.statusCode, 302, url);
    t.is(res.headers.location, location, url);
  }
  const page = await app.inject({ url: '/ui/devices/gw-1?range=1h' });
  t.is(page.statusCode, 200);
  t.is(page.body, '<div id="app"></div>');
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'; script-src 'self'; style-src 'self';/);
  t.is((await app.inject({ url: '/ui/assets/app.js' })).body, 'export {};');
  t.is((await app.inject({ url: '/ui/assets/gone.js' })).statusCode, 404);
});

test('a hub installed without the portal answers /ui with how to build it', async (t) => {
  const app = await serverWith(null);
  for (const url of ['/ui/', '/ui/rollouts/3']) {
    const res = await app.inject({ url });
    t.is(res.statusCode, 404, url);
    t.deepEqual(res.json(), { error: { code: 'HUB_E_NOT_FOUND', message: 'the portal is not built in this install: run `npm run build` in the edgeml checkout' } });
  }
  t.is((await app.inject({ url: '/' })).headers.location, '/ui/');
});
