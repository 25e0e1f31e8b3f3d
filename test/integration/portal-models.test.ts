/**
 * The portal's Models and Builds pages in a real browser, against a real hub that built a real image
 * (buildx, the rig's registry, a smoke test) and a real agent serving it:
 * - the model page draws the lineage from the model version through its manifest and image build to
 *   the device running it, each box linking to its page;
 * - the models list, the builds list (succeeded, its platform and smoke test) and the build page
 *   (the log as the hub wrote it, the smoke test's result, no Cancel on a finished build).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import type { ModelLineage } from '../../shared/api/lineage.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import { assertNoConsoleErrors, newPortalPage, openBrowser, screenshot, signIn } from '../helpers/browser.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub } from '../helpers/edgeml-process.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;

test('models and builds pages: the lineage from model version to the device serving it, the build with its log and smoke test', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const suffix = randomBytes(3).toString('hex');
  const deviceId = `pm-${suffix}`;
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined));

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--run-id', 'run-42', '--dataset', 'iris@2026-11', '--metric', 'accuracy=0.96', '--tag', 'team=vision', '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token: await enrollDevice(hub, deviceId, { fleet: suffix }), extraArgs: ['--platform', 'linux/amd64', '--health-timeout', '2m'] });
  const created = jsonOf<Deployment>(t, await cli('deploy', 'scorer', '--build', String(image.id), '--target', `fleet=${suffix}`, '--json'));
  t.is(jsonOf<Rollout>(t, await cli('rollout', 'status', String(created.rollout.id), '--watch', '--json')).phase, 'succeeded');
  // The page draws what the API says; wait until the hub has the device's report of serving it.
  await waitFor(
    'the lineage to reach the device',
    async () => (await api<ModelLineage>(hub, 'GET', '/api/v1/models/iris-linear/versions/1/lineage', { key: hub.adminKey })).body.placements.length === 1,
    30_000,
    200,
  );

  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);

  // Models list → the model page.
  await page.getByRole('link', { name: 'Models', exact: true }).click();
  const modelRow = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'iris-linear', exact: true }) });
  await modelRow.waitFor();
  t.regex(await modelRow.innerText(), /team=vision/);
  await modelRow.getByRole('link', { name: 'iris-linear', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Model iris-linear' }).waitFor();

  const chain = page.getByRole('list', { name: 'Lineage of iris-linear:1, from data to devices' });
  const deviceLink = chain.getByRole('link', { name: deviceId, exact: true });
  await deviceLink.waitFor();
  t.is(await deviceLink.getAttribute('href'), `/ui/devices/${deviceId}`);
  // The device's stage and its box both hold the link; the box is the innermost, last in document order.
  const deviceBox = chain.getByRole('listitem').filter({ has: page.getByRole('link', { name: deviceId, exact: true }) }).last();
  t.regex(await deviceBox.innerText(), new RegExp(`${deviceId}[\\s\\S]*scorer revision 1[\\s\\S]*from build ${image.id}`));
  t.is(await deviceBox.getByRole('link', { name: 'scorer', exact: true }).getAttribute('href'), '/ui/deployments/scorer');
  const buildLink = chain.getByRole('link', { name: `build ${image.id}`, exact: true });
  t.is(await buildLink.getAttribute('href'), `/ui/builds/${image.id}`);
  // Stage titles are styled in capitals, which innerText follows.
  const stages = (await chain.locator(':scope > li').allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  t.is(stages.length, 6);
  t.regex(stages[0]!, /^Datasets iris@2026-11$/i);
  t.regex(stages[1]!, /^Training run run-42 accuracy 0\.96$/i);
  t.regex(stages[2]!, /^Model version iris-linear:1 [0-9a-f]{12}$/i);
  t.regex(stages[3]!, /^Manifests \(1\) js:1$/i);
  t.regex(stages[4]!, new RegExp(`^Image builds \\(1\\) build ${image.id} js:1 succeeded linux/amd64$`, 'i'));
  t.regex(stages[5]!, new RegExp(`^Devices \\(1\\) ${deviceId} online scorer revision 1 · running from build ${image.id}$`, 'i'));
  const versionRow = page.getByRole('table', { name: 'Versions of iris-linear' }).getByRole('row').nth(1);
  t.regex(await versionRow.innerText(), /run run-42 · data iris@2026-11/);
  await screenshot(page, 'models');

  // Builds list → the build page.
  await page.getByRole('link', { name: 'Builds', exact: true }).click();
  const buildRow = page.getByRole('row').filter({ has: page.getByRole('link', { name: String(image.id), exact: true }) });
  await buildRow.waitFor();
  t.regex((await buildRow.innerText()).replace(/\s+/g, ' '), /js:1 succeeded linux\/amd64 passed/);
  await buildRow.getByRole('link', { name: String(image.id), exact: true }).click();
  await page.getByRole('heading', { level: 1, name: `Build ${image.id}` }).waitFor();

  await page.getByText(/^End of the log · \d+ lines$/).waitFor();
  const logText = await page.getByLabel(`Log of build ${image.id}`).innerText();
  t.true(logText.includes(`edgeml: image ${image.id} from manifest js:1 for linux/amd64 (attempt 1)`), logText.slice(0, 2000));
  t.regex(logText, /edgeml: linux\/amd64: passed: /);
  const smoke = page.getByRole('table', { name: 'Platforms and smoke tests' }).getByRole('row').filter({ hasText: 'linux/amd64' });
  t.regex((await smoke.innerText()).replace(/\s+/g, ' '), /^linux\/amd64 [0-9a-f]{12} [\d.]+ [KM]B passed /);
  t.is(await page.getByRole('button', { name: 'Cancel build' }).count(), 0, 'a finished build has no Cancel button');
  await screenshot(page, 'build');
  assertNoConsoleErrors(t, page);
});
