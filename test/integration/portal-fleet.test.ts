/**
 * The portal's sign-in and its fleet page in Debian's chromium, against a real hub with simulated
 * devices (real MQTT), one enrolled device that never connected and one revoked: sign-in with an
 * admin, a wrong and a read key, sign-out, a bookmarked filtered view, the fleet's counts and label
 * filter against the API, counts moving live, and the page at phone width, by keyboard, without
 * console errors.
 */
import test, { type ExecutionContext } from 'ava';
import type { Page } from 'playwright-core';
import type { ApiKeyCreated } from '../../shared/api/apikeys.js';
import type { Device, DeviceList } from '../../shared/api/devices.js';
import { startFleet, type Fleet } from '../../bench/simulator/fleet-simulator.js';
import { assertNoConsoleErrors, newPortalPage, openBrowser, screenshot, signIn, UI_MS } from '../helpers/browser.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const FAST = { pullMs: { min: 100, max: 300 }, startMs: 50, healthMs: { min: 50, max: 150 } };
const ADMIN_NAME = 'admin (first start)';
/** The issue's sections, first in the nav (more may follow). */
const NAV = ['Fleet', 'Models', 'Builds', 'Deployments', 'Telemetry'];

interface Populated {
  hub: HubProcess;
  fleet: Fleet;
  neverConnected: string;
  revoked: string;
}

async function ok<T>(t: ExecutionContext, hub: HubProcess, method: 'GET' | 'POST', path: string, json?: unknown): Promise<T> {
  const res = await api<T>(hub, method, path, { key: hub.adminKey, ...(json === undefined ? {} : { json }) });
  t.true(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * Six simulated devices (three at site=a, three at site=b) running service `x` at site a, plus one
 * device enrolled at site a that never connected and one revoked at site b.
 */
async function populatedHub(t: ExecutionContext): Promise<Populated> {
  const hub = await startHub(t);
  const fleet = await startFleet({ hub, idPrefix: 'fl', count: 6, labels: (i) => ({ site: i < 3 ? 'a' : 'b', ring: i === 0 ? 'canary' : 'main' }), timing: FAST, seed: 7 });
  t.teardown(() => fleet.stop());
  const neverConnected = 'gw-never';
  const revoked = 'gw-gone';
  await ok(t, hub, 'POST', '/api/v1/devices', { id: neverConnected, labels: { site: 'a' } });
  await ok(t, hub, 'POST', '/api/v1/devices', { id: revoked, labels: { site: 'b' } });
  await ok(t, hub, 'POST', `/api/v1/devices/${revoked}/revoke`);
  await ok(t, hub, 'POST', '/api/v1/deployments', { service: 'x', image: `127.0.0.1:5000/sim/x@sha256:${'1'.repeat(64)}`, target: { site: 'a' } });
  const siteA = fleet.ids.slice(0, 3);
  await waitFor('site a to converge on x', async () => {
    const { devices } = await ok<DeviceList>(t, hub, 'GET', '/api/v1/devices?label=site=a');
    return siteA.every((id) => devices.find((d) => d.id === id)?.phase === 'converged');
  }, 60_000, 200);
  return { hub, fleet, neverConnected, revoked };
}

const devicesOf = async (t: ExecutionContext, hub: HubProcess, label?: string) => (await ok<DeviceList>(t, hub, 'GET', `/api/v1/devices${label ? `?label=${label}` : ''}`)).devices;

/** The status cards as the page shows them: `{ devices: 8, online: 6, … }`. */
async function cards(page: Page): Promise<Record<string, number>> {
  const texts = await page.getByRole('list', { name: 'Devices by status' }).getByRole('link').allInnerTexts();
  return Object.fromEntries(
    texts.map((text) => {
      const m = /^(\d+)\s+(.+)$/s.exec(text.trim());
      if (!m) throw new Error(`a status card reads “${text}”`);
      return [m[2]!.replace(/\s+/g, ' '), Number(m[1])];
    }),
  );
}

function expectedCards(devices: readonly Device[]): Record<string, number> {
  const n = (s: Device['status']) => devices.filter((d) => d.status === s).length;
  return { [devices.length === 1 ? 'device' : 'devices']: devices.length, online: n('online'), offline: n('offline'), revoked: n('revoked'), 'never connected': n('never-connected') };
}

/** Ids in the device table, in its order. */
const tableIds = (page: Page) => page.getByRole('table', { name: /^Devices:/ }).getByRole('rowheader').allInnerTexts();

/** Waits until `read()` gives what `expected()` gives (both read again each time): the page is live. */
async function until<T>(what: string, read: () => Promise<T>, expected: () => T | Promise<T>, timeoutMs = UI_MS): Promise<void> {
  let last: { seen: T; want: T } | undefined;
  try {
    await waitFor(what, async () => {
      const [seen, want] = [await read(), await expected()];
      last = { seen, want };
      return JSON.stringify(seen) === JSON.stringify(want);
    }, timeoutMs, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}; page: ${JSON.stringify(last?.seen)}, expected: ${JSON.stringify(last?.want)}`);
  }
}

test.serial('sign-in: admin key, wrong key, sign-out, a read key, and a bookmarked filtered view; the key never in a URL', async (t) => {
  const hub = await startHub(t);
  await ok(t, hub, 'POST', '/api/v1/devices', { id: 'gw-a1', labels: { site: 'a' } });
  await ok(t, hub, 'POST', '/api/v1/devices', { id: 'gw-b1', labels: { site: 'b' } });
  const readKey = (await ok<ApiKeyCreated>(t, hub, 'POST', '/api/v1/apikeys', { name: 'viewer', scope: 'read' })).key;
  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url);
  const urls: string[] = [];
  page.on('request', (req) => urls.push(req.url()));
  page.on('framenavigated', (frame) => urls.push(frame.url()));

  // A wrong key: an error a person can read, still on the sign-in form.
  await page.goto('/ui/');
  await page.getByLabel('API key').fill('emk_not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  t.regex(await page.getByRole('alert').innerText(), /sign-in failed/i);
  t.true(await page.getByLabel('API key').isVisible(), 'still on the sign-in form');
  t.is(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no nav without a key');

  // The admin key: the nav and who is signed in.
  await signIn(page, hub.url, hub.adminKey);
  const nav = page.getByRole('navigation', { name: 'Main' });
  t.deepEqual((await nav.getByRole('link').allInnerTexts()).slice(0, NAV.length), NAV);
  t.regex(await page.getByRole('banner').innerText(), new RegExp(`${ADMIN_NAME.replace(/[()]/g, '\\$&')}\\s*\\(admin\\)`));
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Fleet');

  // Signing out forgets the key and shows the form.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  t.is(await page.evaluate('sessionStorage.length'), 0, 'the key is gone from session storage');

  // A bookmarked filtered view opened in a fresh tab: sign in first, then that very view.
  const bookmark = await newPortalPage(t, browser, hub.url);
  bookmark.on('request', (req) => urls.push(req.url()));
  bookmark.on('framenavigated', (frame) => urls.push(frame.url()));
  await bookmark.goto('/ui/?label=site=a');
  await bookmark.getByLabel('API key').waitFor();
  t.is(await bookmark.getByRole('navigation', { name: 'Main' }).count(), 0, 'the bookmark asks for a key first');
  await bookmark.getByLabel('API key').fill(hub.adminKey);
  await bookmark.getByRole('button', { name: 'Sign in' }).click();
  await until('the bookmarked view to list site a only', () => tableIds(bookmark), () => ['gw-a1']);
  t.is(new URL(bookmark.url()).search, '?label=site=a', 'the filter stays in the address');
  t.is(await bookmark.getByLabel('Label filter', { exact: true }).inputValue(), 'site=a');

  // A read key: signed in, scope shown.
  await signIn(page, hub.url, readKey);
  t.regex(await page.getByRole('banner').innerText(), /viewer\s*\(read\)/);
  await until('the read key to see the fleet', () => tableIds(page), () => ['gw-a1', 'gw-b1']);

  t.true(urls.length > 0);
  for (const key of [hub.adminKey, readKey]) {
    t.false(
      urls.some((u) => u.includes(key) || u.includes(encodeURIComponent(key))),
      'no URL carries a key',
    );
  }
  // The wrong key's sign-in check is the one refusal; the read key's pages ask nothing it may not read.
  assertNoConsoleErrors(t, page, { refusals: [/^GET \S+\/api\/v1\/whoami: 401$/] });
  assertNoConsoleErrors(t, bookmark);
});

test.serial('fleet page: counts as the API reports them, label filter and search, counts moving live', async (t) => {
  const { hub, fleet, neverConnected, revoked } = await populatedHub(t);
  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);

  const all = await devicesOf(t, hub);
  t.deepEqual(expectedCards(all), { devices: 8, online: 6, offline: 0, revoked: 1, 'never connected': 1 }, 'the hub sees the fleet as set up');
  await until('the status cards to match the API', () => cards(page), async () => expectedCards(await devicesOf(t, hub)));
  t.deepEqual(await tableIds(page), [...all.map((d) => d.id)].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  t.true(await page.getByRole('link', { name: 'site=a: 4' }).isVisible(), 'by label: 3 simulated + 1 never connected at site a');
  t.true(await page.getByRole('link', { name: 'site=b: 4' }).isVisible());
  t.true(await page.getByRole('link', { name: 'ring=canary: 1' }).isVisible());
  const platforms = await page.getByRole('region', { name: 'By platform' }).innerText();
  t.regex(platforms, /linux\/amd64\s+6\b/);
  t.regex(platforms, /unknown\s+2\b/);
  const attention = page.getByRole('table', { name: /needing attention/ });
  t.regex(await attention.innerText(), new RegExp(`${neverConnected}.*lagging`), 'a targeted device that never connected is behind');
  await screenshot(page, 'fleet');

  // A label filter narrows the table, the cards and the URL to exactly the matching devices.
  await page.getByLabel('Label filter', { exact: true }).fill('site=a');
  await page.getByRole('button', { name: 'Filter' }).click();
  const siteA = (await devicesOf(t, hub, 'site=a')).map((d) => d.id).sort();
  t.is(siteA.length, 4);
  await until('the table to list site a only', () => tableIds(page), () => siteA);
  t.deepEqual(await cards(page), expectedCards(await devicesOf(t, hub, 'site=a')));
  t.is(new URL(page.url()).searchParams.get('label'), 'site=a');
  t.false((await tableIds(page)).includes(revoked));

  // Two labels: both must match. Then the search narrows by id, and the status filter by status.
  await page.getByLabel('Label filter', { exact: true }).fill('site=a,ring=canary');
  await page.getByLabel('Label filter', { exact: true }).press('Enter');
  await until('site a canaries', () => tableIds(page), async () => (await devicesOf(t, hub, 'site=a&label=ring=canary')).map((d) => d.id));
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await until('the whole fleet again', () => tableIds(page), () => [...all.map((d) => d.id)].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  await page.getByLabel('Search', { exact: true }).fill(fleet.ids[4]!);
  await until('the search to find one device', () => tableIds(page), () => [fleet.ids[4]!]);
  t.is(new URL(page.url()).searchParams.get('q'), fleet.ids[4]!);
  await page.getByLabel('Search', { exact: true }).fill('');
  await page.getByRole('combobox', { name: /^Status/ }).selectOption('revoked');
  await until('the status filter', () => tableIds(page), () => [revoked]);
  await page.getByRole('link', { name: /devices$/ }).click();
  await until('any status again', () => tableIds(page), () => all.map((d) => d.id).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));

  // Live, no reload: a device drops off and another is revoked; the cards follow the API.
  await page.evaluate('window.sameDocument = true');
  const dropped = fleet.ids[0]!;
  fleet.device(dropped).goOffline();
  await ok(t, hub, 'POST', `/api/v1/devices/${fleet.ids[5]!}/revoke`);
  await until('the cards to show one offline and two revoked', () => cards(page), () => ({ devices: 8, online: 4, offline: 1, revoked: 2, 'never connected': 1 }));
  t.deepEqual(await cards(page), expectedCards(await devicesOf(t, hub)));
  await until('the dropped device to need attention', async () => /offline with 1 service/.test(await attention.innerText()) && (await attention.innerText()).includes(dropped), () => true);
  t.true(await page.evaluate('window.sameDocument === true'), 'the page was not reloaded');
  assertNoConsoleErrors(t, page);
});

test.serial('quality: phone width without horizontal scroll, the nav by keyboard, no console error on any page', async (t) => {
  const { hub } = await populatedHub(t);
  const browser = await openBrowser(t);
  const phone = await newPortalPage(t, browser, hub.url, { viewport: { width: 390, height: 844 } });
  await signIn(phone, hub.url, hub.adminKey);
  await until('the fleet table', async () => (await tableIds(phone)).length, () => 8);
  const widths = await phone.evaluate<{ scroll: number; client: number }>('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })');
  t.true(widths.scroll <= widths.client, `no horizontal scroll at 390 px: ${JSON.stringify(widths)}`);

  // Keyboard: the skip link first, then the brand and the nav links, in order.
  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);
  await page.evaluate('document.activeElement?.blur()');
  const focused: string[] = [];
  for (let i = 0; i < 2 + NAV.length; i++) {
    await page.keyboard.press('Tab');
    focused.push(await page.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''"));
  }
  t.deepEqual(focused, ['Skip to content', 'edgeml', ...NAV]);
  await page.keyboard.press('Shift+Tab'); // back to Deployments
  await page.keyboard.press('Enter');
  await until('Enter on a nav link to open its page', () => page.getByRole('heading', { level: 1 }).innerText(), () => 'Deployments');

  // Every page of the nav once, each left to load and poll.
  const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
  const names = await links.allInnerTexts();
  t.true(names.length >= NAV.length);
  for (const name of names) {
    const link = links.filter({ hasText: name });
    const href = await link.getAttribute('href');
    await link.click();
    await page.waitForURL((u) => u.pathname === href);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await until(`${name} to load`, () => page.locator('[aria-busy="true"]').count(), () => 0);
    t.is(await page.getByRole('heading', { level: 1 }).count(), 1, `${name}: one h1`);
  }
  assertNoConsoleErrors(t, page);
  assertNoConsoleErrors(t, phone);
});
