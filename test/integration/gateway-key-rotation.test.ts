/**
 * A rotated service key: the gateway takes the old key beside the new one until the grace ends (by
 * its own clock, injected here, so no test waits), then only the new one.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway } from '../../agent/gateway/server.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { DesiredService } from '../../shared/protocol.js';
import { hashSecret } from '../../shared/secrets.js';

const OLD_KEY = 'ems_the-old-key';
const NEW_KEY = 'ems_the-new-key';
const START = Date.parse('2030-01-01T00:00:00Z');
const UNTIL = '2030-01-01T00:10:00.000Z';

test('the old key passes the gateway during the grace, then only the new one', async (t) => {
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.teardown(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  // The gateway's timers are real; only the time it reads is set by the test.
  let now = START;
  const clock: Clock = { ...systemClock, now: () => now };
  const routes = new RouteTable();
  const service: DesiredService = {
    name: 'iris',
    revision: 1,
    image: `reg/iris@sha256:${'0'.repeat(64)}`,
    limits: { maxConcurrent: 2, maxQueue: 2, memoryBytes: null, cpus: null },
    keyHash: hashSecret(NEW_KEY),
    previousKeys: [{ keyHash: hashSecret(OLD_KEY), until: UNTIL }],
    models: [],
  };
  routes.set(service, [{ container: 'upstream', port: (upstream.address() as AddressInfo).port }]);
  const gateway = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, routes, desired: () => ['iris'], clock, logger: pino({ level: 'silent' }) });
  t.teardown(() => gateway.close());

  const score = async (key: string) => {
    const res = await request(`${gateway.url}/v1/services/iris/score`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: '{}' });
    await res.body.dump();
    return res.statusCode;
  };

  t.is(await score(NEW_KEY), 200);
  t.is(await score(OLD_KEY), 200, 'the old key, within its grace');
  t.is(await score('ems_another-key'), 401);

  now = Date.parse(UNTIL) - 1;
  t.is(await score(OLD_KEY), 200, 'the old key, on the last millisecond of its grace');

  now = Date.parse(UNTIL);
  t.is(await score(OLD_KEY), 401, 'the old key, after its grace');
  t.is(await score(NEW_KEY), 200);

  // A state without previousKeys (an older hub, or the grace dropped) takes only the new key.
  now = START;
  const { previousKeys: _gone, ...withoutPrevious } = service;
  routes.set(withoutPrevious, [{ container: 'upstream', port: (upstream.address() as AddressInfo).port }]);
  t.is(await score(OLD_KEY), 401);
  t.is(await score(NEW_KEY), 200);
});
