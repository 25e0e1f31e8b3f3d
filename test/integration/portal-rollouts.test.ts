/**
 * The portal's Deployments and live rollout pages in Debian's chromium, against a real hub and the
 * fleet simulator: a staged rollout started with the CLI is paused and resumed from the page (the CLI
 * sees `paused`), the page follows its devices to `succeeded`; a read key sees no action buttons; a
 * page a step behind the hub shows the hub's refusal; Abort asks in the page, then rolls back.
 */
import test, { type ExecutionContext } from 'ava';
import type { Page } from 'playwright-core';
import type { ApiKeyCreated } from '../../shared/api/apikeys.js';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import { ACTIVE_ROLLOUT_PHASES, type Rollout } from '../../shared/api/rollouts.js';
import { startFleet, type FleetOptions } from '../../bench/simulator/fleet-simulator.js';
import { assertNoConsoleErrors, newPortalPage, openBrowser, screenshot, signIn, UI_MS } from '../helpers/browser.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const SERVICE = 'x';
const image = (hexDigit: string) => `127.0.0.1:5000/sim/x@sha256:${hexDigit.repeat(64)}`;

async function fleetAndService(t: ExecutionContext, count: number, timing: FleetOptions['timing']): Promise<{ hub: HubProcess; serviceKey: string }> {
  const hub = await startHub(t);
  const fleet = await startFleet({ hub, idPrefix: 'sim', count, labels: () => ({ site: 'sim' }), timing, seed: 7 });
  t.teardown(() => fleet.stop());
  const created = await api<DeploymentCreated>(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { service: SERVICE, image: image('1'), target: { site: 'sim' } } });
  t.is(created.status, 201, JSON.stringify(created.body));
  await waitFor('the first deploy to finish', async () => {
    const r = (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${created.body.rollout.id}`, { key: hub.adminKey })).body;
    return !ACTIVE_ROLLOUT_PHASES.includes(r.phase);
  }, 60_000, 100);
  return { hub, serviceKey: created.body.key };
}

/** `edgeml service update` with rollout flags; the id of the rollout it started. */
async function update(t: ExecutionContext, hub: HubProcess, img: string, ...flags: string[]): Promise<number> {
  const updated = jsonOf<Deployment>(t, await cliFor(hub)('service', 'update', SERVICE, '--image', img, ...flags, '--json'));
  return updated.rollout.id;
}

const statusLine = (page: Page) => page.getByRole('status');

/** Waits for the status line to say the rollout is in `phase`; a timeout says what it read instead. */
async function waitForPhase(page: Page, id: number, phase: string): Promise<void> {
  const wanted = `Rollout ${id} of ${SERVICE} is ${phase}`;
  try {
    await statusLine(page).filter({ hasText: wanted }).waitFor();
  } catch (err) {
    const last = await statusLine(page).allInnerTexts().catch((e: Error) => [`(unreadable: ${e.message})`]);
    throw new Error(`${(err as Error).message}\nwaiting for “${wanted}”; the status line last read ${JSON.stringify(last)}`);
  }
}

/**
 * Each device row's phase as the page shows it now. A row's innerText has its cells apart by tabs:
 * Device, Batch, Phase, ….
 */
async function shownPhases(page: Page): Promise<Record<string, string>> {
  const rows = await page.getByRole('table', { name: /^Devices \(\d+\)$/ }).locator('tbody').getByRole('row').allInnerTexts();
  return Object.fromEntries(rows.map((row) => row.split('\t').map((cell) => cell.trim())).map((cells) => [cells[0], cells[2] ?? '']));
}

test.serial('a staged rollout started with the CLI: paused and resumed from the page, followed to succeeded', async (t) => {
  t.timeout(240_000);
  // Slow pulls: each batch of two takes 4–5 s, so on a loaded machine Pause still comes before the
  // last of the four batches starts (about 12 s after the update).
  const { hub, serviceKey } = await fleetAndService(t, 8, { pullMs: { min: 4000, max: 5000 }, startMs: 100, healthMs: 100 });
  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);

  const id = await update(t, hub, image('2'), '--strategy', 'batches', '--batch-size', '2');
  await page.goto(`/ui/rollouts/${id}`);
  await waitForPhase(page, id, 'running');
  t.is(await page.getByRole('heading', { level: 1 }).textContent(), `Rollout ${id}`);
  await page.getByRole('button', { name: 'Pause' }).click();
  await waitForPhase(page, id, 'paused');
  t.is(await page.getByRole('button', { name: 'Pause' }).count(), 0, 'no Pause on a paused rollout');
  await page.getByRole('button', { name: 'Resume' }).waitFor();

  const cli = cliFor(hub);
  t.is(jsonOf<Rollout>(t, await cli('rollout', 'status', String(id), '--json')).phase, 'paused', 'the CLI sees the pause made in the page');

  // Devices already moving finish; none moves while paused.
  const paused = await waitFor('the moving devices to finish in the page', async () => {
    const phases = Object.values(await shownPhases(page));
    return phases.length === 8 && phases.every((p) => p === 'healthy' || p === 'pending') ? await shownPhases(page) : undefined;
  }, UI_MS, 100);
  const waiting = Object.keys(paused).filter((d) => paused[d] === 'pending');
  const done = Object.keys(paused).filter((d) => paused[d] === 'healthy');
  t.true(done.length >= 2 && done.length % 2 === 0, `whole batches done while paused: ${done.join(', ')}`);
  t.true(waiting.length >= 2, `devices still waiting while paused: ${waiting.join(', ')}`);
  await page.getByText(`${done.length} of 8 devices done`).waitFor();
  await screenshot(page, 'rollout');

  // The list shows the paused rollout as the service's active one.
  const list = await newPortalPage(t, browser, hub.url);
  await signIn(list, hub.url, hub.adminKey);
  await list.goto('/ui/deployments');
  const row = list.getByRole('row').filter({ has: list.getByRole('link', { name: SERVICE, exact: true }) });
  await row.getByRole('link', { name: `Rollout ${id}`, exact: true }).waitFor();
  t.regex((await row.textContent()) ?? '', /paused/);
  await screenshot(list, 'deployments');

  // The deployment: its revisions, the devices serving it, its rollouts; never its key.
  await row.getByRole('link', { name: SERVICE, exact: true }).click();
  await list.getByRole('heading', { level: 1, name: `Deployment ${SERVICE}` }).waitFor();
  await list.getByRole('table', { name: 'Devices serving (8)' }).waitFor();
  await list.getByRole('table', { name: 'Rollouts, newest first' }).getByRole('link', { name: `Rollout ${id}`, exact: true }).waitFor();
  const revisions = list.getByRole('table', { name: 'Revisions, newest first' }).locator('tbody').getByRole('row');
  await revisions.nth(1).waitFor();
  t.is(await revisions.count(), 2, 'the first deploy and the update');
  t.false((await list.content()).includes(serviceKey), 'the service key is not in the page');
  await screenshot(list, 'deployment');
  assertNoConsoleErrors(t, list);

  await page.getByRole('button', { name: 'Resume' }).click();
  await waitForPhase(page, id, 'succeeded');
  await page.getByText('8 of 8 devices done').waitFor();
  const after = await shownPhases(page);
  t.deepEqual(
    waiting.map((d) => after[d]),
    waiting.map(() => 'healthy'),
    'the devices that waited moved in the page',
  );
  t.is(await page.getByRole('button', { name: /^(Pause|Resume|Abort)$/ }).count(), 0, 'no action on a finished rollout');
  t.is(jsonOf<Rollout>(t, await cli('rollout', 'status', String(id), '--json')).phase, 'succeeded');
  assertNoConsoleErrors(t, page);
});

test.serial('a read key sees no buttons; a page behind the hub shows its refusal; Abort asks first, then rolls back', async (t) => {
  t.timeout(240_000);
  const { hub } = await fleetAndService(t, 4, { pullMs: { min: 100, max: 300 }, startMs: 50, healthMs: 50 });
  // A soak of an hour holds the rollout after its first batch: running, for as long as the test needs.
  const id = await update(t, hub, image('2'), '--strategy', 'batches', '--batch-size', '2', '--soak', '1h');
  const cli = cliFor(hub);
  const viewer = jsonOf<ApiKeyCreated>(t, await cli('apikey', 'create', '--name', 'viewer', '--scope', 'read', '--json'));

  const browser = await openBrowser(t);
  const reader = await newPortalPage(t, browser, hub.url);
  await signIn(reader, hub.url, viewer.key);
  await reader.goto(`/ui/rollouts/${id}`);
  await waitForPhase(reader, id, 'running');
  await reader.getByText('2 of 4 devices done').waitFor();
  t.is(await reader.getByRole('button', { name: /^(Pause|Resume|Abort)/ }).count(), 0, 'a read key gets no action button');
  assertNoConsoleErrors(t, reader);

  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);
  await page.goto(`/ui/rollouts/${id}`);
  await waitForPhase(page, id, 'running');

  // Hold the page's polls, so it still shows `running` after the CLI paused the rollout.
  const held: { continue(): Promise<void> }[] = [];
  let holding = true;
  await page.route(`**/api/v1/rollouts/${id}`, (route) => (holding ? void held.push(route) : route.continue()));
  await waitFor('a poll of the page to be held', () => held.length > 0, UI_MS, 50);
  t.is((await cli('rollout', 'pause', String(id))).code, 0);
  await page.getByRole('button', { name: 'Pause' }).click();
  const alert = page.getByRole('alert').filter({ hasText: 'Pause failed' });
  await alert.waitFor();
  t.regex((await alert.textContent()) ?? '', new RegExp(`^Pause failed: rollout ${id} is paused: only a running rollout can be paused \\(409 `));
  holding = false;
  await Promise.all(held.map((r) => r.continue()));
  await waitForPhase(page, id, 'paused');

  await page.getByRole('button', { name: 'Abort' }).click();
  const confirm = page.getByRole('group', { name: 'Confirm abort' });
  t.regex((await confirm.textContent()) ?? '', new RegExp(`Abort rollout ${id} and roll back the 2 devices it moved\\?`));
  t.is((await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${id}`, { key: hub.adminKey })).body.phase, 'paused', 'nothing happens before the confirmation');
  await confirm.getByRole('button', { name: 'Abort and roll back' }).click();
  await waitForPhase(page, id, 'aborted');
  t.is(await page.getByRole('alert').count(), 0, 'the earlier refusal is gone');

  const rollback = (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${id}`, { key: hub.adminKey })).body.rolledBackBy;
  t.truthy(rollback, 'the abort started a rollback');
  await page.getByRole('link', { name: `Rollout ${rollback}`, exact: true }).click();
  await page.waitForURL(`**/ui/rollouts/${rollback}`);
  await waitForPhase(page, rollback!, 'succeeded');
  t.is(await page.getByRole('button', { name: 'Abort' }).count(), 0, 'a rollback offers no Abort');
  assertNoConsoleErrors(t, page, { refusals: [new RegExp(`^POST \\S+/api/v1/rollouts/${id}/pause: 409$`)] });
});
