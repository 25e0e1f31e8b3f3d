/** The broker's device identity and per-device topic ACL (hub/broker/auth.ts). */
import test from 'ava';
import { deviceBrokerAuth } from '../../hub/broker/auth.js';
import { hashSecret } from '../../shared/secrets.js';

const tokens: Record<string, string> = { 'gw-1': 'secret-1', 'gw-2': 'secret-2' };
const credentials = (revoked: ReadonlySet<string>) => {
  const isActive = (id: string) => Object.hasOwn(tokens, id) && !revoked.has(id);
  return {
    isActive,
    verifyToken: (id: string, token: string) => isActive(id) && tokens[id] === token,
    tokenHashValid: (id: string, hash: string) => isActive(id) && hashSecret(tokens[id] ?? '') === hash,
  };
};
const auth = deviceBrokerAuth(credentials(new Set()));
const me = { deviceId: 'gw-1' };

test('a device connects as itself: client id = username = device id, password = its token', async (t) => {
  t.deepEqual(await auth.authenticate('gw-1', 'gw-1', Buffer.from('secret-1')), { ...me, tokenHash: hashSecret('secret-1') });
  t.is(await auth.authenticate('gw-1', 'gw-1', Buffer.from('secret-2')), null, "another device's token");
  t.is(await auth.authenticate('gw-2', 'gw-1', Buffer.from('secret-1')), null, "another device's session (client id)");
  t.is(await auth.authenticate('gw-1', 'gw-1', undefined), null, 'no password');
  t.is(await auth.authenticate('gw-1', undefined, Buffer.from('secret-1')), null, 'no username');
  t.is(await auth.authenticate('nobody', 'nobody', Buffer.from('secret-1')), null, 'not enrolled');
});

test('a verified client certificate admits its device without a password, only as itself, only while active, and only if the hub issued that serial to it for MQTT', async (t) => {
  const clientCertificates = { clientDevice: (serial: string) => ({ C1: 'gw-1', C2: 'gw-2' })[serial] };
  const certAuth = deviceBrokerAuth(credentials(new Set()), clientCertificates);
  const mine = { commonName: 'gw-1', serial: 'C1' };
  t.deepEqual(await certAuth.authenticate('gw-1', undefined, undefined, mine), me);
  t.true(certAuth.certificateAdmitted?.(mine));
  t.deepEqual(await certAuth.authenticate('gw-1', 'gw-1', undefined, mine), me, 'a username that names the same device');
  t.is(await certAuth.authenticate('gw-2', undefined, undefined, mine), null, "another device's session");
  t.is(await certAuth.authenticate('gw-2', 'gw-2', Buffer.from('secret-2'), mine), null, "a certificate for gw-1 does not carry gw-2's token");
  t.is(await certAuth.authenticate('gw-1', 'gw-2', undefined, mine), null, 'another username');
  for (const [certificate, why] of [
    [{ commonName: 'gw-1', serial: 'C9' }, 'a serial the hub never issued (a gateway certificate, or another of an operator CA)'],
    [{ commonName: 'gw-1', serial: 'C2' }, "a serial issued to another device"],
    [{ commonName: 'nobody', serial: 'C1' }, 'not enrolled'],
  ] as const) {
    t.is(await certAuth.authenticate(certificate.commonName, undefined, undefined, certificate), null, why);
    t.false(certAuth.certificateAdmitted?.(certificate), why);
  }
  const revoked = deviceBrokerAuth(credentials(new Set(['gw-1'])), clientCertificates);
  t.is(await revoked.authenticate('gw-1', undefined, undefined, mine), null, 'revoked');
  t.false(revoked.certificateAdmitted?.(mine), 'revoked');
  t.is(await auth.authenticate('gw-1', undefined, undefined, mine), null, 'without records of issued certificates, none is admitted');
});

test('publish: only the agent channels under its own prefix', (t) => {
  for (const channel of ['status', 'reported', 'telemetry', 'cmd/ack', 'csr']) t.true(auth.canPublish(me, `edgeml/v1/dev/gw-1/${channel}`), channel);
  for (const channel of ['desired', 'cmd', 'cert']) t.false(auth.canPublish(me, `edgeml/v1/dev/gw-1/${channel}`), `${channel} is the hub's`);
  t.false(auth.canPublish(me, 'edgeml/v1/dev/gw-2/status'), "another device's topic");
  t.false(auth.canPublish(me, 'edgeml/v1/dev/gw-1/other'));
  t.false(auth.canPublish(me, 'elsewhere/topic'));
  t.false(auth.canPublish(me, 'edgeml/v1/dev/gw-1'));
});

test('subscribe: only the hub channels under its own prefix, no wildcards', (t) => {
  t.true(auth.canSubscribe(me, 'edgeml/v1/dev/gw-1/desired'));
  t.true(auth.canSubscribe(me, 'edgeml/v1/dev/gw-1/cmd'));
  for (const filter of [
    'edgeml/v1/dev/gw-2/desired',
    'edgeml/v1/dev/+/desired',
    'edgeml/v1/dev/gw-1/#',
    'edgeml/v1/dev/gw-1/+',
    '#',
    'edgeml/v1/dev/gw-1/status',
    '$SYS/#',
  ]) {
    t.false(auth.canSubscribe(me, filter), filter);
  }
});

test('a device revoked after it connected may no longer publish or subscribe, even on its own topics', (t) => {
  const revoked = new Set<string>();
  const live = deviceBrokerAuth(credentials(revoked));
  t.true(live.admitted(me));
  t.true(live.canPublish(me, 'edgeml/v1/dev/gw-1/reported'));
  t.true(live.canSubscribe(me, 'edgeml/v1/dev/gw-1/desired'));
  // The identity was handed out at CONNECT; the revocation comes later.
  revoked.add('gw-1');
  t.false(live.admitted(me));
  for (const channel of ['status', 'reported', 'telemetry', 'cmd/ack']) t.false(live.canPublish(me, `edgeml/v1/dev/gw-1/${channel}`), channel);
  for (const channel of ['desired', 'cmd']) t.false(live.canSubscribe(me, `edgeml/v1/dev/gw-1/${channel}`), channel);
  t.true(live.canPublish({ deviceId: 'gw-2' }, 'edgeml/v1/dev/gw-2/status'), 'other devices are not affected');
});

test('a connection made with a token stays admitted while that token is valid; once a rotation replaced it and its grace ended, only that connection loses it', async (t) => {
  const live = deviceBrokerAuth(credentials(new Set()));
  const identity = await live.authenticate('gw-1', 'gw-1', Buffer.from('secret-1'));
  t.truthy(identity);
  t.true(live.admitted(identity!));
  tokens['gw-1'] = 'secret-1-rotated';
  t.teardown(() => (tokens['gw-1'] = 'secret-1'));
  t.false(live.admitted(identity!), 'the replaced token, its grace over');
  t.false(live.canPublish(identity!, 'edgeml/v1/dev/gw-1/reported'));
  const renewed = await live.authenticate('gw-1', 'gw-1', Buffer.from('secret-1-rotated'));
  t.true(live.admitted(renewed!), 'a connection with the new token');
  t.true(live.admitted(me), 'a certificate identity carries no token');
});
