/**
 * The portal's Telemetry and Device pages in Debian's chromium, against a real hub and a real agent
 * serving a real scoring container (a hub build of the node fixture) with 1 s telemetry: a scoring
 * load of known size shows on the charts' captions and cards as the hub's API reports it, the view
 * lives in the URL, and the device page shows the agent's facts, its service with revision, image
 * digest and model, its metrics charts, and label editing for an admin key only.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Locator, Page } from 'playwright-core';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ServiceTelemetry } from '../../shared/api/telemetry.js';
import { assertNoConsoleErrors, newPortalPage, openBrowser, screenshot, signIn, UI_MS } from '../helpers/browser.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub } from '../helpers/edgeml-process.js';
import { api, deviceOf, enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 5 * 60_000;
const REQUESTS = 23;

/** What a person reads: innerText keeps cells and lines apart. */
const textOf = async (locator: Locator) => (await locator.innerText()).replace(/\s+/g, ' ').trim();

/** Waits until the locator's text matches (the pages poll, so figures arrive a few seconds late). */
const waitForText = (what: string, locator: Locator, pattern: RegExp, timeoutMs = UI_MS) =>
  waitFor(what, async () => pattern.test(await textOf(locator)) || undefined, timeoutMs, 200).catch(async (err: Error) => {
    throw new Error(`${err.message}; last text: ${await textOf(locator).catch(() => '(none)')}`);
  });

// A label wrapping its select or input names it with its own text and then the control's value
// ("Service scorer"), so the controls are found by role and a name that starts with the label.

/** A chart's figure by its title, once uPlot drew it: a canvas inside the figure. */
async function chart(page: Page, title: string): Promise<Locator> {
  const figure = page.locator('figure', { has: page.locator('figcaption strong', { hasText: title }) });
  await figure.locator('canvas').first().waitFor();
  return figure;
}

/** The figure on the headline card labelled `what`: each card reads its figure, then what it is, on lines of their own. */
async function card(page: Page, what: string): Promise<string> {
  const cards = await page.getByRole('list', { name: 'Headline figures' }).getByRole('listitem').allInnerTexts();
  const lines = cards.map((text) => text.split('\n').map((line) => line.trim()).filter(Boolean)).find((l) => l.at(-1) === what);
  if (!lines) throw new Error(`no headline card “${what}” among ${JSON.stringify(cards)}`);
  return lines.slice(0, -1).join(' ');
}

test('telemetry and device pages show what a real agent serving a real container reports', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const site = `pt-${randomBytes(3).toString('hex')}`;
  const deviceId = `portal-${site}`;
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined));

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  const token = await enrollDevice(hub, deviceId, { site });
  await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, extraArgs: ['--platform', 'linux/amd64', '--telemetry-interval', '1s'] });
  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'scorer', '--build', String(image.id), '--target', `site=${site}`, '--json'));
  const { gateway } = await servingRevision(hub, deviceId, 1, LONG);

  for (let i = 0; i < REQUESTS; i++) {
    const res = await request(`${gateway}/v1/services/scorer/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` },
      body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }),
    });
    await res.body.dump();
    t.is(res.statusCode, 200);
  }
  const report = async (query = '') => (await api<ServiceTelemetry>(hub, 'GET', `/api/v1/telemetry/services/scorer?since=1h${query}`, { key: hub.adminKey })).body;
  const counted = await waitFor(`the hub to count ${REQUESTS} requests`, async () => {
    const r = await report();
    return r.requests >= REQUESTS && r;
  }, 30_000, 250);
  t.is(counted.requests, REQUESTS, 'exactly the requests sent');

  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url, { viewport: { width: 1280, height: 800 } });
  await signIn(page, hub.url, hub.adminKey);

  // The nav's Telemetry link opens the first service, with the choice in the URL.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Telemetry' }).click();
  await page.waitForURL((url) => url.pathname === '/ui/telemetry' && url.searchParams.get('service') === 'scorer');
  t.is(await textOf(page.getByRole('heading', { level: 1 })), 'Telemetry');
  t.is(await page.getByRole('combobox', { name: /^Service\b/ }).inputValue(), 'scorer');

  // A chart (canvas in a figure) whose caption carries the count the hub reports; cards and the
  // device table agree with the API.
  const requestsChart = await chart(page, 'scorer: requests/s');
  await waitForText('the caption to show the count', requestsChart.locator('figcaption'), new RegExp(`\\b${REQUESTS} requests · 0 errors · p95 `));
  t.is(await requestsChart.locator('[role=img]').getAttribute('aria-label'), 'scorer: requests/s');
  await chart(page, 'scorer: error rate');
  await chart(page, 'scorer: latency (ms)');
  const api1h = await report();
  t.is(await card(page, 'requests'), String(api1h.requests));
  t.is(await card(page, 'error rate'), '0.0 %');
  t.regex(await card(page, 'p95 latency'), /^(> )?\d+(\.\d)? ms$/);
  const p95 = api1h.p95!;
  t.is(await card(page, 'p95 latency'), `${api1h.atLeast.includes('p95') ? '> ' : ''}${p95 < 10 ? p95.toFixed(1) : p95.toFixed(0)} ms`);
  const row = page.getByRole('table', { name: /Devices serving scorer/ }).getByRole('row', { name: new RegExp(deviceId) });
  t.regex(await textOf(row), new RegExp(`^${deviceId} ${REQUESTS} `));
  // The device picker offers the devices that sent figures.
  t.deepEqual(await page.getByRole('combobox', { name: /^Device\b/ }).locator('option').allTextContents(), ['all devices (fleet)', deviceId]);

  // The range picker changes the URL and the figures are asked again for that range.
  const reloaded = page.waitForResponse((res) => res.url().includes('/api/v1/telemetry/services/scorer/series') && res.url().includes('since=15m') && res.status() === 200);
  await page.getByLabel('Time range').selectOption('15m');
  await page.waitForURL((url) => url.searchParams.get('range') === '15m');
  await reloaded;
  await waitForText('the 15m caption', (await chart(page, 'scorer: requests/s')).locator('figcaption'), new RegExp(`\\b${REQUESTS} requests`));
  t.regex(await textOf(page.getByRole('heading', { level: 2 }).first()), /last 15m/);
  await screenshot(page, 'telemetry');

  // One device: the URL says so, and the charts are that device's.
  await page.getByRole('combobox', { name: /^Device\b/ }).selectOption(deviceId);
  await page.waitForURL((url) => url.searchParams.get('device') === deviceId && url.searchParams.get('range') === '15m');
  await waitForText('the device chart caption', (await chart(page, `scorer on ${deviceId}: requests/s`)).locator('figcaption'), new RegExp(`\\b${REQUESTS} requests`));
  // …and a bookmark of it opens the same view.
  await page.goto(`/ui/telemetry?service=scorer&device=${deviceId}&range=6h`);
  t.is(await page.getByLabel('Time range').inputValue(), '6h');
  await chart(page, `scorer on ${deviceId}: requests/s`);
  assertNoConsoleErrors(t, page);

  // The device page of the real agent.
  await page.getByRole('link', { name: deviceId }).first().click();
  await page.waitForURL(`**/ui/devices/${deviceId}`);
  t.is(await textOf(page.getByRole('heading', { level: 1 })), `Device ${deviceId}`);
  const facts = page.locator('dl.kv');
  await waitForText('the facts', facts, /Platform linux\/amd64/);
  const device = await deviceOf(hub, deviceId);
  t.regex(await textOf(facts), new RegExp(`Agent version ${device.facts!.agentVersion.replace(/\./g, '\\.')}`));
  t.regex(await textOf(facts), /Status online/);
  const services = page.getByRole('table', { name: `Services on ${deviceId}` });
  const scorerRow = services.getByRole('row', { name: /scorer/ });
  await waitForText('the service row', scorerRow, /^scorer 1 running /);
  t.true((await textOf(scorerRow)).includes(deployed.digest), 'the image digest');
  t.regex(await textOf(scorerRow), /iris-linear:1/);
  t.regex(await textOf(scorerRow), /1 ready of 1/);
  await waitForText('the CPU caption', (await chart(page, 'CPU')).locator('figcaption'), /now \d+\.\d %/);
  await waitForText('the memory caption', (await chart(page, 'Memory')).locator('figcaption'), /[KMG]?B of \d/);
  await chart(page, 'Disk');
  await waitForText('the service chart on the device page', (await chart(page, `scorer on ${deviceId}: requests/s`)).locator('figcaption'), new RegExp(`\\b${REQUESTS} requests`));
  await page.getByText('No errors in the device’s last report.').waitFor();
  // The range is in the device page's URL too, and its charts are asked again for it.
  const metrics15m = page.waitForResponse((res) => res.url().includes(`/api/v1/telemetry/devices/${deviceId}?since=15m`) && res.status() === 200);
  await page.getByLabel('Time range').selectOption('15m');
  await page.waitForURL(`**/ui/devices/${deviceId}?range=15m`);
  await metrics15m;
  await waitForText('the 15m heading', page.getByRole('heading', { name: /^Metrics/ }), /^Metrics, last 15m$/);
  await chart(page, 'CPU');
  await screenshot(page, 'device');

  // Admin: a label added and saved is the API's; one the hub refuses shows its reason and changes nothing.
  await page.getByRole('textbox', { name: /^Key\b/ }).fill('ring');
  await page.getByRole('textbox', { name: /^Value\b/ }).fill('canary');
  await page.getByRole('button', { name: 'Add label' }).click();
  await page.getByRole('button', { name: 'Save labels' }).click();
  await waitFor('the label at the hub', async () => (await deviceOf(hub, deviceId)).labels.ring === 'canary' || undefined, UI_MS);
  await waitForText('the saved label in the table', page.getByRole('table', { name: `Labels of ${deviceId}` }), /ring canary Remove/);
  await waitForText('the saved label in the facts', page.getByRole('list', { name: 'Labels' }), new RegExp(`^ring=canary site=${site}$`));
  t.true(await page.getByRole('button', { name: 'Save labels' }).isDisabled(), 'nothing left to save');
  await page.getByRole('textbox', { name: /^Key\b/ }).fill('ring');
  await page.getByRole('textbox', { name: /^Value\b/ }).fill('not a value');
  await page.getByRole('button', { name: 'Add label' }).click();
  await page.getByRole('button', { name: 'Save labels' }).click();
  await waitForText('the refusal', page.getByRole('alert'), /^The labels were not saved: .+\(400 /);
  t.like((await deviceOf(hub, deviceId)).labels, { site, ring: 'canary' });
  await page.getByRole('button', { name: 'Remove label ring' }).click();
  await page.getByRole('button', { name: 'Save labels' }).click();
  await waitFor('the label removed at the hub', async () => (await api<Device>(hub, 'GET', `/api/v1/devices/${deviceId}`, { key: hub.adminKey })).body.labels.ring === undefined || undefined, UI_MS);
  t.deepEqual((await deviceOf(hub, deviceId)).labels, { site });
  await page.getByRole('alert').waitFor({ state: 'detached' });
  assertNoConsoleErrors(t, page, { refusals: [new RegExp(`^PATCH \\S+/api/v1/devices/${deviceId}/labels: 400$`)] });

  // A read key, on a phone: the labels and no editor, and neither page wider than the screen.
  const readKey = (await api<{ key: string }>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'viewer', scope: 'read' } })).body.key;
  const reader = await newPortalPage(t, browser, hub.url, { viewport: { width: 390, height: 844 } });
  const pageWidth = () => reader.evaluate<number>('document.documentElement.scrollWidth');
  await signIn(reader, hub.url, readKey);
  await reader.goto(`/ui/devices/${deviceId}`);
  await waitForText('the labels', reader.getByRole('list', { name: 'Labels' }), new RegExp(`^site=${site}$`));
  t.is(await reader.getByRole('heading', { name: 'Edit labels' }).count(), 0);
  await chart(reader, 'CPU');
  t.is(await reader.getByRole('button', { name: 'Save labels' }).count(), 0);
  t.is(await reader.getByRole('textbox', { name: /^Key\b/ }).count(), 0);
  t.is(await pageWidth(), 390, 'the device page fits a phone');
  await reader.goto(`/ui/telemetry?service=scorer&range=1h`);
  await waitForText('the phone caption', (await chart(reader, 'scorer: requests/s')).locator('figcaption'), new RegExp(`\\b${REQUESTS} requests`));
  await reader.getByRole('table', { name: /Devices serving scorer/ }).waitFor();
  t.is(await pageWidth(), 390, 'the telemetry page fits a phone');
  assertNoConsoleErrors(t, reader);
});
