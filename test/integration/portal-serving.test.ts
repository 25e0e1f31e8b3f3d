/**
 * The portal as files: served by the hub at /ui with its security headers, every page path answering
 * the app, nothing outside dist/ui reachable, nothing loaded from another host, and no /ui route in
 * the OpenAPI document (the portal is a client of the API, not part of it).
 */
import test from 'ava';
import { startHub } from '../helpers/edgeml-process.js';

async function get(url: string): Promise<{ status: number; type: string; headers: Headers; text: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, text: await res.text() };
}

test('the hub serves the portal at /ui: redirects, deep links, assets, headers, no traversal, no CDN', async (t) => {
  const hub = await startHub(t);

  for (const path of ['/', '/ui']) {
    const res = await get(`${hub.url}${path}`);
    t.is(res.status, 302, path);
    t.is(res.headers.get('location'), '/ui/', path);
  }

  for (const path of ['/ui/', '/ui/rollouts/7', '/ui/devices/gw-1', '/ui/telemetry?service=iris&range=1h']) {
    const page = await get(`${hub.url}${path}`);
    t.is(page.status, 200, path);
    t.regex(page.type, /^text\/html/, path);
    t.regex(page.text, /<div id="app">/, path);
    t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/, path);
    t.is(page.headers.get('x-content-type-options'), 'nosniff', path);
    t.is(page.headers.get('referrer-policy'), 'no-referrer', path);
  }

  const html = (await get(`${hub.url}/ui/`)).text;
  const references = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
  t.true(references.length >= 2, 'the page loads its script and stylesheet');
  for (const ref of references) t.true(ref.startsWith('/ui/') || ref.startsWith('data:'), `${ref} is served by the hub`);

  const script = await get(`${hub.url}/ui/assets/app.js`);
  t.is(script.status, 200);
  t.regex(script.type, /javascript/);
  t.notRegex(script.text, /(?:from|import\()\s*["']https?:/, 'no module is imported from another host');
  const style = await get(`${hub.url}/ui/assets/app.css`);
  t.is(style.status, 200);
  t.regex(style.type, /text\/css/);
  t.notRegex(style.text, /url\(\s*["']?https?:/, 'no stylesheet resource from another host');

  const missing = await get(`${hub.url}/ui/assets/nosuch.js`);
  t.is(missing.status, 404, 'a missing asset is a 404, not the page');
  t.is((JSON.parse(missing.text) as { error: { code: string } }).error.code, 'HUB_E_NOT_FOUND');

  for (const path of ['/ui/%2e%2e/%2e%2e/package.json', '/ui/..%2f..%2fpackage.json', '/ui/assets/..%2f..%2f..%2fpackage.json']) {
    const res = await get(`${hub.url}${path}`);
    // Refused, or read as a page path under /ui (the app shell): never a file from outside dist/ui.
    const shell = res.status === 200 && /^text\/html/.test(res.type) && res.text.includes('<div id="app">');
    t.true(res.status === 404 || shell, `${path}: ${res.status} ${res.type} ${res.text.slice(0, 200)}`);
    t.false(res.text.includes('"devDependencies"'), `${path} does not reach files outside dist/ui`);
  }

  const openapi = JSON.parse((await get(`${hub.url}/openapi.json`)).text) as { paths: Record<string, unknown> };
  t.deepEqual(Object.keys(openapi.paths).filter((p) => p === '/' || p.startsWith('/ui')), []);
  t.truthy(openapi.paths['/api/v1/devices'], 'the API is still documented');
});
