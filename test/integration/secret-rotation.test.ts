/**
 * Rotation of secrets with a grace window, against a real hub: an API key and a device token each
 * work beside their replacement until the grace ends, then only the replacement does; a device still
 * connected with its old token is dropped when the grace ends. Every rotation is listed in the API
 * and logged, never with the secret.
 */
import test from 'ava';
import mqtt, { type MqttClient } from 'mqtt';
import type { ApiKeyCreated, ApiKeyList } from '../../shared/api/apikeys.js';
import type { Device } from '../../shared/api/devices.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

/** Long enough for the checks within it (CLI spawns on a loaded machine), short enough to wait out. */
const GRACE = '20s';
/** How long a check waits for the grace to end: the grace and the same again. */
const PAST_GRACE_MS = 40_000;

/** Connects, or resolves with the CONNACK refusal code (4: bad credentials; -1: no answer). */
async function tryConnect(url: string, deviceId: string, token: string): Promise<MqttClient | number> {
  const client = mqtt.connect(url, { clientId: deviceId, username: deviceId, password: token, reconnectPeriod: 0, connectTimeout: 10_000 });
  return new Promise((resolve) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      const code = (err as { code?: unknown }).code;
      resolve(typeof code === 'number' ? code : -1);
    });
    client.once('close', () => resolve(-1));
  });
}

/** Whether the broker takes `token` for `deviceId` (the connection is closed again at once). */
async function accepted(url: string, deviceId: string, token: string): Promise<boolean> {
  const client = await tryConnect(url, deviceId, token);
  if (typeof client === 'number') return false;
  await client.endAsync(true);
  return true;
}

test('apikey rotate: the old and the new key both work during the grace, then only the new one; the rotation is listed and logged without the key', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const created = (await api<ApiKeyCreated>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'ci', scope: 'read' } })).body;
  const status = async (key: string) => (await api(hub, 'GET', '/api/v1/models', { key })).status;
  t.is(await status(created.key), 200);

  const rotated = jsonOf<{ id: string; key: string; previousValidUntil: string | null }>(t, await cli('apikey', 'rotate', created.id, '--grace', GRACE, '--json'));
  t.deepEqual(Object.keys(rotated).sort(), ['id', 'key', 'previousValidUntil']);
  t.is(rotated.id, created.id);
  t.regex(rotated.key, new RegExp(`^emk_${created.id}_[A-Za-z0-9_-]{43}$`));
  t.truthy(rotated.previousValidUntil);

  t.is(await status(created.key), 200, 'the old key, within its grace');
  t.is(await status(rotated.key), 200, 'the new key');
  t.true(Date.now() < Date.parse(rotated.previousValidUntil!), 'both were checked within the grace');

  await waitFor('the old key refused after its grace', async () => (await status(created.key)) === 401, PAST_GRACE_MS, 200);
  t.true(Date.now() >= Date.parse(rotated.previousValidUntil!));
  t.is(await status(rotated.key), 200, 'the new key, after the grace');

  const list = (await api<ApiKeyList>(hub, 'GET', '/api/v1/apikeys', { key: hub.adminKey })).body;
  const listed = list.keys.find((k) => k.id === created.id)!;
  t.is(listed.rotations?.length, 1);
  t.like(listed.rotations![0], { by: { keyName: 'admin (first start)' }, previousValidUntil: rotated.previousValidUntil });
  t.false(JSON.stringify(list).includes(rotated.key.slice(-43)));

  const logged = await hub.waitForLog('API key rotated', (l) => l.msg === 'API key rotated');
  t.like(logged, { keyId: created.id, previousValidUntil: rotated.previousValidUntil });
  const human = await cli('apikey', 'rotate', created.id, '--grace', '0s');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /The old key no longer works/);
  t.is(await status(rotated.key), 401, 'a 0s grace: the old key stops at once');
  for (const secret of [created.key, rotated.key]) t.false(hub.logs.some((l) => JSON.stringify(l).includes(secret.slice(-43))), 'no key in the logs');

  const revoked = await cli('apikey', 'revoke', created.id);
  t.is(revoked.code, 0, revoked.stderr);
  const again = await api(hub, 'POST', `/api/v1/apikeys/${created.id}/rotate`, { key: hub.adminKey, json: {} });
  t.is(again.status, 409, 'a revoked key cannot be rotated');
});

test('device rotate-token: the broker takes the old and the new token during the grace; a connection with the old one is dropped at its end, then only the new one connects; the device view lists the rotation', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const url = `mqtt://${hub.mqtt}`;
  const oldToken = await enrollDevice(hub, 'gw-1');
  t.true(await accepted(url, 'gw-1', oldToken));

  const rotated = jsonOf<{ id: string; token: string; previousValidUntil: string | null }>(t, await cli('device', 'rotate-token', 'gw-1', '--grace', GRACE, '--json'));
  t.deepEqual(Object.keys(rotated).sort(), ['id', 'previousValidUntil', 'token']);
  t.regex(rotated.token, /^emd_[A-Za-z0-9_-]{43}$/);
  t.not(rotated.token, oldToken);

  const until = Date.parse(rotated.previousValidUntil!);
  t.true(await accepted(url, 'gw-1', rotated.token), 'the new token');
  // Last, and kept open: the client id is the device id, so a later connection would take its place.
  const held = await tryConnect(url, 'gw-1', oldToken);
  if (typeof held === 'number') return t.fail(`the old token, within its grace, was refused (${held})`);
  t.true(Date.now() < until, 'both were checked within the grace');
  let closedAt: number | undefined;
  held.once('close', () => (closedAt = Date.now()));

  await waitFor('the hub to drop the connection made with the old token', () => closedAt, PAST_GRACE_MS, 100);
  t.true(closedAt! >= until, `dropped at the end of the grace, not before (${closedAt! - until} ms after it)`);
  await hub.waitForLog('the expiry', (l) => l.msg === 'a replaced device token expired' && l.deviceId === 'gw-1');
  t.is(await tryConnect(url, 'gw-1', oldToken), 4, 'the old token, reconnecting: refused as bad credentials');
  t.true(await accepted(url, 'gw-1', rotated.token), 'the new token, after the grace');
  held.end(true);


  const view = (await api<Device>(hub, 'GET', '/api/v1/devices/gw-1', { key: hub.adminKey })).body;
  t.is(view.rotations?.length, 1);
  t.like(view.rotations![0], { by: { keyName: 'admin (first start)' }, previousValidUntil: rotated.previousValidUntil });
  t.false('previousTokens' in view);

  // Another rotation: a connection made with the new token outlives the end of the grace.
  const expiries = () => hub.logs.filter((l) => l.msg === 'a replaced device token expired' && l.deviceId === 'gw-1').length;
  const second = jsonOf<{ token: string }>(t, await cli('device', 'rotate-token', 'gw-1', '--grace', '3s', '--json'));
  const fresh = await tryConnect(url, 'gw-1', second.token);
  if (typeof fresh === 'number') return t.fail(`the new token was refused (${fresh})`);
  t.teardown(() => fresh.end(true));
  await waitFor('the second grace to end', () => expiries() >= 2, PAST_GRACE_MS, 100);
  const [granted] = await fresh.subscribeAsync('edgeml/v1/dev/gw-1/desired', { qos: 1 });
  t.not(granted?.qos, 128, 'still admitted: it connected with the current token');
  t.true(fresh.connected);
  const logged = await hub.waitForLog('device token rotated', (l) => l.msg === 'device token rotated');
  t.like(logged, { deviceId: 'gw-1', previousValidUntil: rotated.previousValidUntil });
  for (const secret of [oldToken, rotated.token]) t.false(hub.logs.some((l) => JSON.stringify(l).includes(secret.slice(4))), 'no token in the logs');

  t.is((await cli('device', 'revoke', 'gw-1')).code, 0);
  t.is((await api(hub, 'POST', '/api/v1/devices/gw-1/rotate-token', { key: hub.adminKey, json: { grace: '1m' } })).status, 409, 'a revoked device gets no token');
});
