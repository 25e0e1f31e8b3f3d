/**
 * API keys (hub/auth/api-keys.ts): minting and storing only a hash, authenticating a Bearer header,
 * nested scopes. Backed by the lowdb store on lowdb's in-memory adapter, with a fake clock.
 */
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { ApiKeyAuthority } from '../../hub/auth/api-keys.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { ApiKeyRecord } from '../../hub/store/store.js';
import type { Scope } from '../../shared/api/common.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

const T0 = Date.parse('2024-05-01T12:00:00.000Z');
const KEY_SHAPE = /^emk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

async function setup() {
  const clock = new FakeClock(T0);
  const memory = new Memory<HubData>();
  const store = await LowdbHubStore.open(memory, 'memory');
  return { clock, memory, store, authority: new ApiKeyAuthority(store.apiKeys, clock) };
}

async function unauthenticated(t: ExecutionContext, promise: Promise<unknown>): Promise<string> {
  const err = await t.throwsAsync(promise, { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.HUB_UNAUTHENTICATED);
  t.is(err?.httpStatus, 401);
  return err?.message ?? '';
}

function record(scope: Scope): ApiKeyRecord {
  return { id: '0123456789ab', name: `a ${scope} key`, scope, hash: '00'.repeat(32), createdAt: '2024-05-01T12:00:00.000Z', createdBy: null, revokedAt: null };
}

test('create returns emk_<12 hex>_<43 chars> and stores only a hash of the secret', async (t) => {
  const { authority, store, memory } = await setup();
  const created = await authority.create('ci-pipeline', 'deploy', { keyId: 'ffffffffffff', keyName: 'admin' });
  const match = KEY_SHAPE.exec(created.key);
  t.truthy(match, created.key);
  const id = match![1]!;
  const secret = match![2]!;
  t.is(created.id, id);
  t.is(created.name, 'ci-pipeline');
  t.is(created.scope, 'deploy');
  t.deepEqual(created.createdBy, { keyId: 'ffffffffffff', keyName: 'admin' });
  t.is(created.revokedAt, null);
  t.false('hash' in created);

  const stored = await store.apiKeys.list();
  t.is(stored.length, 1);
  t.is(stored[0]!.id, id);
  t.regex(stored[0]!.hash, /^[0-9a-f]{64}$/);
  const everything = JSON.stringify(stored) + JSON.stringify(await memory.read());
  t.false(everything.includes(secret));
  t.false(everything.includes(created.key));

  const listed = await authority.list();
  t.false('hash' in listed[0]!);
});

test('two created keys differ', async (t) => {
  const { authority } = await setup();
  const a = await authority.create('a', 'read', null);
  const b = await authority.create('b', 'read', null);
  t.not(a.id, b.id);
  t.not(a.key, b.key);
});

test('createdAt and revokedAt come from the clock', async (t) => {
  const { authority, clock } = await setup();
  await authority.create('keeper', 'admin', null);
  const created = await authority.create('ci', 'deploy', null);
  t.is(created.createdAt, '2024-05-01T12:00:00.000Z');
  clock.ms = T0 + 90_000;
  const revoked = await authority.revoke(created.id);
  t.is(revoked.revokedAt, '2024-05-01T12:01:30.000Z');
  t.false('hash' in revoked);
});

test('authenticate accepts the key, with any case of "Bearer"', async (t) => {
  const { authority } = await setup();
  const created = await authority.create('ci', 'deploy', null);
  const rec = await authority.authenticate(`Bearer ${created.key}`);
  t.is(rec.id, created.id);
  t.is(rec.scope, 'deploy');
  t.is((await authority.authenticate(`bearer ${created.key}`)).id, created.id);
});

test('authenticate rejects a missing header', async (t) => {
  const { authority } = await setup();
  t.regex(await unauthenticated(t, authority.authenticate(undefined)), /Bearer/);
  await unauthenticated(t, authority.authenticate(''));
});

test('authenticate rejects a header that is not Bearer', async (t) => {
  const { authority } = await setup();
  const created = await authority.create('ci', 'deploy', null);
  t.regex(await unauthenticated(t, authority.authenticate(`Basic ${created.key}`)), /Bearer/);
  await unauthenticated(t, authority.authenticate(created.key));
});

test('authenticate rejects a malformed key', async (t) => {
  const { authority } = await setup();
  const created = await authority.create('ci', 'deploy', null);
  await unauthenticated(t, authority.authenticate('Bearer not-a-key'));
  await unauthenticated(t, authority.authenticate(`Bearer ${created.key}x`));
  await unauthenticated(t, authority.authenticate(`Bearer ${created.key.replace('emk_', 'emx_')}`));
  await unauthenticated(t, authority.authenticate(`Bearer ${created.key.slice(0, -1)}`));
});

test('authenticate rejects an unknown id', async (t) => {
  const { authority } = await setup();
  const created = await authority.create('ci', 'deploy', null);
  const [, id, secret] = KEY_SHAPE.exec(created.key)!;
  const otherId = id === '000000000000' ? '111111111111' : '000000000000';
  t.is(await unauthenticated(t, authority.authenticate(`Bearer emk_${otherId}_${secret}`)), 'the API key is not valid');
});

test('authenticate rejects the right id with a wrong secret', async (t) => {
  const { authority } = await setup();
  const created = await authority.create('ci', 'deploy', null);
  const [, id, secret] = KEY_SHAPE.exec(created.key)!;
  const wrong = (secret!.startsWith('A') ? 'B' : 'A') + secret!.slice(1);
  t.is(await unauthenticated(t, authority.authenticate(`Bearer emk_${id}_${wrong}`)), 'the API key is not valid');
});

test('authenticate rejects a revoked key, saying it was revoked', async (t) => {
  const { authority } = await setup();
  await authority.create('keeper', 'admin', null);
  const created = await authority.create('ci', 'deploy', null);
  await authority.revoke(created.id);
  const message = await unauthenticated(t, authority.authenticate(`Bearer ${created.key}`));
  t.regex(message, /revoked/);
  t.true(message.includes(created.id));
});

test('authorize: scopes nest admin ⊃ deploy ⊃ read', async (t) => {
  const { authority } = await setup();
  const allowed: Array<[Scope, Scope]> = [
    ['read', 'read'],
    ['deploy', 'read'],
    ['deploy', 'deploy'],
    ['admin', 'read'],
    ['admin', 'deploy'],
    ['admin', 'admin'],
  ];
  for (const [has, needs] of allowed) t.notThrows(() => authority.authorize(record(has), needs), `${has} may do ${needs}`);

  const denied: Array<[Scope, Scope]> = [
    ['read', 'deploy'],
    ['read', 'admin'],
    ['deploy', 'admin'],
  ];
  for (const [has, needs] of denied) {
    const err = t.throws(() => authority.authorize(record(has), needs), { instanceOf: EdgemlError }, `${has} may not do ${needs}`);
    t.is(err?.code, ErrorCodes.HUB_FORBIDDEN);
    t.is(err?.httpStatus, 403);
    t.true(err?.message.includes(`needs the ${needs} scope`), err?.message);
    t.true(err?.message.includes(`has ${has}`), err?.message);
  }
});

const ADMIN = { keyId: 'ffffffffffff', keyName: 'admin' };
const bearer = (key: string) => `Bearer ${key}`;

test('rotate: the old and the new secret both work during the grace, only the new one after; the rotation is recorded', async (t) => {
  const { authority, clock, memory } = await setup();
  const created = await authority.create('ci-pipeline', 'deploy', ADMIN);
  clock.ms += 1000;
  const rotated = await authority.rotate(created.id, '10m', ADMIN);
  t.is(rotated.id, created.id);
  t.regex(rotated.key, KEY_SHAPE);
  t.not(rotated.key, created.key);
  t.is(rotated.previousValidUntil, new Date(clock.ms + 600_000).toISOString());
  t.deepEqual(rotated.rotations, [{ at: new Date(clock.ms).toISOString(), by: ADMIN, previousValidUntil: rotated.previousValidUntil }]);
  t.false(JSON.stringify(await memory.read()).includes(KEY_SHAPE.exec(rotated.key)![2]!), 'the new secret is not stored');

  t.is((await authority.authenticate(bearer(created.key))).id, created.id, 'the old key within its grace');
  t.is((await authority.authenticate(bearer(rotated.key))).id, created.id);
  clock.ms += 600_000 - 1;
  t.is((await authority.authenticate(bearer(created.key))).id, created.id, 'the old key on the last millisecond of its grace');
  clock.ms += 1;
  await unauthenticated(t, authority.authenticate(bearer(created.key)));
  t.is((await authority.authenticate(bearer(rotated.key))).id, created.id);
  const [listed] = await authority.list();
  t.deepEqual(listed!.rotations, rotated.rotations);
  t.false('previousHashes' in listed!);
});

test('rotate with grace 0s: the old secret stops at once; expired previous secrets are dropped on the next rotation', async (t) => {
  const { authority, clock, store } = await setup();
  const created = await authority.create('ci', 'read', ADMIN);
  const first = await authority.rotate(created.id, '1m', ADMIN);
  clock.ms += 120_000;
  const second = await authority.rotate(created.id, '0s', ADMIN);
  t.is(second.previousValidUntil, null);
  await unauthenticated(t, authority.authenticate(bearer(created.key)));
  await unauthenticated(t, authority.authenticate(bearer(first.key)));
  t.is((await authority.authenticate(bearer(second.key))).id, created.id);
  t.deepEqual((await store.apiKeys.get(created.id))!.previousHashes, [], 'the expired one is gone');
  t.deepEqual(
    second.rotations!.map((r) => r.previousValidUntil),
    [first.previousValidUntil, null],
  );
});

test('rotate 1h then 0s: the first secret is refused at once too', async (t) => {
  const { authority, store } = await setup();
  const created = await authority.create('ci', 'read', ADMIN);
  const first = await authority.rotate(created.id, '1h', ADMIN);
  t.is((await authority.authenticate(bearer(created.key))).id, created.id);
  const second = await authority.rotate(created.id, '0s', ADMIN);
  await unauthenticated(t, authority.authenticate(bearer(created.key)));
  await unauthenticated(t, authority.authenticate(bearer(first.key)));
  t.is((await authority.authenticate(bearer(second.key))).id, created.id);
  t.deepEqual((await store.apiKeys.get(created.id))!.previousHashes, []);
});

test('rotate refuses a revoked key (409), an unknown one (404) and a grace over 7d (400), and changes nothing', async (t) => {
  const { authority, store } = await setup();
  await authority.create('admin', 'admin', null);
  const created = await authority.create('ci', 'read', ADMIN);
  await authority.revoke(created.id);
  const before = await store.apiKeys.get(created.id);
  const revoked = await t.throwsAsync(authority.rotate(created.id, '10m', ADMIN), { instanceOf: EdgemlError });
  t.is(revoked?.code, ErrorCodes.HUB_CONFLICT);
  t.is(revoked?.httpStatus, 409);
  t.deepEqual(await store.apiKeys.get(created.id), before);
  t.is((await t.throwsAsync(authority.rotate('0123456789ab', '10m', ADMIN), { instanceOf: EdgemlError }))?.httpStatus, 404);
  const live = await authority.create('live', 'read', ADMIN);
  const tooLong = await t.throwsAsync(authority.rotate(live.id, '8d', ADMIN), { instanceOf: EdgemlError });
  t.is(tooLong?.httpStatus, 400);
  t.regex(tooLong?.message ?? '', /at most 7d/);
});

test('rotations: the view shows the last 20; a retried rotation finds itself by its Idempotency-Key mark', async (t) => {
  const { authority, clock } = await setup();
  const created = await authority.create('ci', 'read', ADMIN);
  const marked = { ...ADMIN, idempotency: { key: 'retry-me', fingerprint: 'f' } };
  await authority.rotate(created.id, '0s', marked, 'x'.repeat(43));
  for (let i = 0; i < 25; i++) {
    clock.ms += 1000;
    await authority.rotate(created.id, '0s', ADMIN);
  }
  const [listed] = await authority.list();
  t.is(listed!.rotations!.length, 20);
  t.is(listed!.rotations!.at(-1)!.at, new Date(clock.ms).toISOString());
  t.false(JSON.stringify(listed).includes('retry-me'), 'views leave the mark out');
  const found = await authority.rotatedBy((a) => a.idempotency?.key === 'retry-me', 'x'.repeat(43));
  t.is(found?.rotated.key, `emk_${created.id}_${'x'.repeat(43)}`);
  t.is(found?.by.idempotency?.fingerprint, 'f');
});
