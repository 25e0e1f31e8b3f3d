/**
 * The agent's certificates (agent/pki): the names a gateway asks for, the CSRs, the keeper that
 * asks the hub, checks and stores the answer, renews two-thirds into a certificate's life with the
 * injected clock and asks again with backoff; the stored material reloaded, or discarded when its
 * key does not match or it has expired. The hub is a fake that signs with a throwaway CA.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { createCsr } from '../../agent/pki/csr.js';
import { CertificateKeeper, NAMES_RENEWAL_INTERVAL_MS } from '../../agent/pki/keeper.js';
import { checkMaterial, renewalTime, type TlsMaterial } from '../../agent/pki/material.js';
import { gatewayNames, MAX_GATEWAY_NAMES } from '../../agent/pki/names.js';
import { CertificateRequests } from '../../agent/pki/requests.js';
import { loadMaterial, materialFile } from '../../agent/pki/tls-files.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { CertificateAnswer, CertificatePurpose, CertificateRequest } from '../../shared/protocol.js';
import { generateKeyPair, privateKeyPem, x509 } from '../../shared/pki/x509.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { makeTestCa, signCsr, type TestCa } from '../helpers/gateway-tls.js';

const logger = pino({ level: 'silent' });
const DAY = 24 * 3600 * 1000;
/** Whole seconds: X.509 times have no milliseconds. */
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;
const INTERFACES = {
  lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
  eth0: [iface('10.0.4.17', 'IPv4'), iface('fd00::17', 'IPv6'), iface('fe80::1', 'IPv6')],
};
/** Lets pending promises, key generation and signing run: no clock involved. */
async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000 && !condition(); i++) await new Promise((r) => setImmediate(r));
  if (!condition()) throw new Error('condition never held');
}
/** The same for a condition that needs I/O to come true. */
async function eventually(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await condition()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition never held');
}
const values = (names: { value: string }[]) => names.map((n) => n.value);

test('a gateway on loopback asks for the loopback names', (t) => {
  t.deepEqual(gatewayNames({ host: '127.0.0.1', interfaces: INTERFACES }), [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  ]);
  t.deepEqual(values(gatewayNames({ host: '127.0.0.5', interfaces: INTERFACES })), ['localhost', '127.0.0.1', '::1', '127.0.0.5']);
  t.deepEqual(values(gatewayNames({ host: 'localhost', interfaces: INTERFACES })), ['localhost', '127.0.0.1', '::1']);
});

test('a gateway on all addresses asks for every interface address (IPv4 only on 0.0.0.0, no link-local) and the advertised host first', (t) => {
  t.deepEqual(values(gatewayNames({ host: '0.0.0.0', interfaces: INTERFACES })), ['localhost', '127.0.0.1', '::1', '10.0.4.17']);
  t.deepEqual(values(gatewayNames({ host: '::', interfaces: INTERFACES })), ['localhost', '127.0.0.1', '::1', '10.0.4.17', 'fd00::17']);
  t.deepEqual(gatewayNames({ host: '0.0.0.0', advertiseUrl: 'https://cam-07.example:8443', interfaces: INTERFACES })[0], { type: 'dns', value: 'cam-07.example' });
});

test('a gateway on one address asks for it and the advertised host, IPv6 without brackets, no loopback names', (t) => {
  t.deepEqual(gatewayNames({ host: '10.0.4.17', advertiseUrl: 'https://[fd00::17]:8443', interfaces: INTERFACES }), [
    { type: 'ip', value: 'fd00::17' },
    { type: 'ip', value: '10.0.4.17' },
  ]);
  t.deepEqual(gatewayNames({ host: 'cam.local', advertiseUrl: 'http://cam.local:8090', interfaces: INTERFACES }), [{ type: 'dns', value: 'cam.local' }]);
});

test('no more names than the hub takes', (t) => {
  const many = { eth0: Array.from({ length: 40 }, (_, i) => iface(`10.1.0.${i + 1}`, 'IPv4')) };
  const names = gatewayNames({ host: '0.0.0.0', interfaces: many });
  t.is(names.length, MAX_GATEWAY_NAMES);
  t.deepEqual(values(names).slice(0, 3), ['localhost', '127.0.0.1', '::1']);
});

test('a gateway CSR carries the names and verifies; a client CSR has CN = device id and no names', async (t) => {
  const keys = await generateKeyPair();
  const gateway = new x509.Pkcs10CertificateRequest(await createCsr('gateway', keys, { commonName: 'dev-1', names: gatewayNames({ host: '127.0.0.1', interfaces: {} }) }));
  t.true(await gateway.verify());
  const san = gateway.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
  t.deepEqual(san?.names.toJSON().map((n) => n.value), ['localhost', '127.0.0.1', '::1']);
  const client = new x509.Pkcs10CertificateRequest(await createCsr('client', keys, { commonName: 'dev-1', names: [] }));
  t.true(await client.verify());
  t.is(client.subject, 'CN=dev-1');
  t.is(client.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension), undefined);
});

/** A hub that answers every request it is sent (or not, while `offline`), signing for `lifetimeMs` from the clock's now. */
class FakeHub {
  readonly asked: CertificateRequest[] = [];
  /** Sends tried (offline ones too) and answers delivered. */
  tried = 0;
  answered = 0;
  offline = false;
  refuse = false;
  /** How far the hub's clock is behind the device's. */
  behindMs = 0;
  /** Answers kept back instead of delivered (the hub is slow). */
  holdAnswers = false;
  readonly held: CertificateAnswer[] = [];
  #waiters: Array<() => boolean> = [];
  constructor(
    readonly ca: TestCa,
    readonly clock: ManualClock,
    readonly lifetimeMs: number,
  ) {}

  async answer(request: CertificateRequest): Promise<CertificateAnswer> {
    const { id, purpose } = request;
    if (this.refuse) return { v: 1, id, purpose, error: { code: 'HUB_E_CSR_REFUSED', message: 'no' } };
    const notBefore = new Date(this.clock.now() - this.behindMs);
    const certificate = await signCsr(this.ca, request.csr, notBefore, new Date(notBefore.getTime() + this.lifetimeMs));
    return { v: 1, id, purpose, certificate, ca: this.ca.pem };
  }

  /** Resolves once `n` requests have been sent. */
  requested(n: number): Promise<void> {
    if (this.asked.length >= n) return Promise.resolve();
    return new Promise((resolve) =>
      this.#waiters.push(() => {
        if (this.asked.length < n) return false;
        resolve();
        return true;
      }),
    );
  }

  requests(): CertificateRequests {
    const requests: CertificateRequests = new CertificateRequests({
      clock: this.clock,
      send: async (request) => {
        this.tried++;
        if (this.offline) throw new Error('offline');
        this.asked.push(request);
        this.#waiters = this.#waiters.filter((w) => !w());
        const answer = await this.answer(request);
        if (this.holdAnswers) return void this.held.push(answer);
        queueMicrotask(() => {
          this.answered++;
          requests.answer(answer);
        });
      },
    });
    return requests;
  }
}

async function setup(t: ExecutionContext, purpose: CertificatePurpose = 'gateway', opts: { dir?: string; lifetimeMs?: number; host?: string; onInstalled?: () => void } = {}) {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'edgeml-agent-pki-')));
  // Registered first, so it runs after the keepers of this test have stopped (teardowns run last-in first-out).
  if (opts.dir === undefined) t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clock = new ManualClock(T0);
  const hub = new FakeHub(await makeTestCa(new Date(T0 - DAY)), clock, opts.lifetimeMs ?? 30 * DAY);
  const requests = hub.requests();
  const installed: TlsMaterial[] = [];
  let onInstall: (() => void) | undefined;
  /** What the gateway serves under now (an address may come later). */
  const served = { host: opts.host ?? '127.0.0.1' };
  const keeper = new CertificateKeeper({
    purpose,
    dir,
    subject: () => ({ commonName: 'dev-1', names: purpose === 'gateway' ? gatewayNames({ host: served.host, interfaces: {} }) : [] }),
    requests,
    onInstalled: (m) => {
      installed.push(m);
      onInstall?.();
      opts.onInstalled?.();
    },
    clock,
    logger,
    random: () => 0,
  });
  t.teardown(() => {
    requests.close();
    return keeper.close();
  });
  const nextInstall = (n: number) => (installed.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (onInstall = () => installed.length >= n && resolve())));
  return { dir, clock, hub, requests, keeper, installed, nextInstall, served };
}

test('with nothing stored the keeper asks at once, checks the answer, stores it (keys 0600) and renews at two-thirds of its life', async (t) => {
  const { dir, clock, hub, keeper, installed, nextInstall } = await setup(t);
  t.is(await keeper.load(), null);
  keeper.start();
  await nextInstall(1);
  const first = installed[0]!;
  t.is(hub.asked.length, 1);
  t.is(hub.asked[0]!.purpose, 'gateway');
  t.is(first.notAfter.getTime(), T0 + 30 * DAY);
  t.deepEqual(first.names, ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']);
  t.is(keeper.current(), first);

  t.is(renewalTime(first), T0 + 20 * DAY);
  clock.advance(20 * DAY - 1000);
  t.is(hub.asked.length, 1, 'not renewed before two-thirds');
  clock.advance(1000);
  await nextInstall(2);
  t.is(hub.asked.length, 2);
  const second = installed[1]!;
  t.not(second.serial, first.serial);
  t.not(second.key, first.key, 'a new key for each certificate');
  t.is(second.notAfter.getTime(), T0 + 50 * DAY);

  // Stored after it is put to use: key, certificate and CA in one file only its owner reads.
  await keeper.close();
  const file = materialFile(dir, 'gateway');
  t.is((await stat(file)).mode & 0o777, 0o600);
  const text = await readFile(file, 'utf8');
  for (const pem of [second.key, second.certificate, hub.ca.pem]) t.true(text.includes(pem.trim()));
  t.is((await loadMaterial(dir, 'gateway', clock.now(), logger))?.serial, second.serial);
  t.is(await readFile(join(dir, 'ca.crt'), 'utf8'), hub.ca.pem);
});

test('offline or refused, the keeper asks again with backoff through the clock, and at once when told the hub is back', async (t) => {
  const { clock, hub, keeper, installed, nextInstall } = await setup(t, 'client');
  hub.offline = true;
  keeper.start();
  // random 0: the floor of the default backoff, half a second.
  // Only the backoff timer: the request's own timer went with its failed send.
  await waitUntil(() => hub.tried === 1 && clock.pending() === 1);
  t.is(hub.asked.length, 0);
  hub.offline = false;
  hub.refuse = true;
  clock.advance(499);
  t.is(hub.asked.length, 0);
  clock.advance(1);
  await waitUntil(() => hub.answered === 1 && clock.pending() === 1);
  t.is(hub.asked.length, 1);
  t.is(installed.length, 0, 'a refusal installs nothing');
  hub.refuse = false;
  keeper.retryNow();
  await nextInstall(1);
  t.is(hub.asked.length, 2);
  t.is(installed[0]!.purpose, 'client');
});

test('no answer in 30 s: the request fails and the keeper asks again with a new id; a late answer is ignored', async (t) => {
  const clock = new ManualClock(T0);
  const sent: CertificateRequest[] = [];
  const requests = new CertificateRequests({ clock, send: async (r) => void sent.push(r) });
  const first = requests.request('gateway', 'csr-pem');
  await waitUntil(() => sent.length === 1);
  clock.advance(29_999);
  t.is(sent.length, 1);
  clock.advance(1);
  const err = await t.throwsAsync(first);
  t.is((err as { code?: string }).code, ErrorCodes.AGENT_CERTIFICATE_FAILED);
  t.false(requests.answer({ v: 1, id: sent[0]!.id, purpose: 'gateway', error: { code: 'X', message: 'late' } }));
  const second = requests.request('gateway', 'csr-pem');
  await waitUntil(() => sent.length === 2);
  t.not(sent[1]!.id, sent[0]!.id);
  t.true(requests.answer({ v: 1, id: sent[1]!.id, purpose: 'gateway', error: { code: 'X', message: 'on time' } }));
  t.is((await second).error?.message, 'on time');
  t.is(clock.pending(), 0, 'no timer left behind');
});

test('a stored certificate is taken up again; load() schedules nothing, start() schedules its renewal at two-thirds of its life, a minute on if that has passed', async (t) => {
  const first = await setup(t);
  first.keeper.start();
  await first.nextInstall(1);
  // Stored once it is in use; close waits for that.
  await first.keeper.close();
  const stored = first.installed[0]!;

  const loadedOnly = await setup(t, 'gateway', { dir: first.dir });
  t.truthy(await loadedOnly.keeper.load());
  t.is(loadedOnly.clock.pending(), 0, 'no timer before start: a failed start leaves nothing running');

  const again = await setup(t, 'gateway', { dir: first.dir });
  again.clock.ms = T0 + 10 * DAY;
  const loaded = await again.keeper.load();
  t.is(loaded?.serial, stored.serial);
  again.keeper.start();
  t.is(again.clock.pending(), 1, 'the renewal is scheduled');
  again.clock.advance(10 * DAY - 1000);
  t.is(again.clock.pending(), 1, 'not due before two-thirds');
  // close waits for a request under way: had one begun, it would have been sent by now.
  const flushed = await setup(t, 'gateway', { dir: first.dir });
  flushed.clock.ms = T0 + 10 * DAY;
  await flushed.keeper.load();
  flushed.keeper.start();
  await flushed.keeper.close();
  t.is(flushed.hub.tried, 0, 'nothing asked while the stored one is good');
  t.is(flushed.installed.length, 0, 'onInstalled is for new certificates: the caller starts with the loaded one');
  again.clock.advance(1000);
  await again.hub.requested(1);

  const late = await setup(t, 'gateway', { dir: first.dir });
  late.clock.ms = T0 + 25 * DAY;
  t.truthy(await late.keeper.load());
  late.keeper.start();
  late.clock.advance(59_999);
  t.is(late.clock.pending(), 1, 'a floor of a minute even when overdue: never a renewal loop');
  late.clock.advance(1);
  await late.hub.requested(1);
});

test('a certificate from a hub whose clock is behind is renewed two-thirds of its lifetime after it came, by the device clock', async (t) => {
  const { clock, hub, keeper, installed, nextInstall } = await setup(t);
  // Its notBefore is 25 days before the device's now: by its own dates it is due already.
  hub.behindMs = 25 * DAY;
  keeper.start();
  await nextInstall(1);
  t.true(renewalTime(installed[0]!) < clock.now());
  clock.advance(20 * DAY - 1000);
  t.is(clock.pending(), 1, 'not renewed at once, nor before two-thirds of its lifetime');
  t.is(hub.tried, 1);
  clock.advance(1000);
  await hub.requested(2);
});

test('a stored key that does not match its certificate, an expired certificate, or a missing part is discarded', async (t) => {
  const { dir, keeper, nextInstall } = await setup(t);
  keeper.start();
  await nextInstall(1);
  await keeper.close();
  const file = materialFile(dir, 'gateway');
  t.truthy(await loadMaterial(dir, 'gateway', T0, logger));
  t.is(await loadMaterial(dir, 'gateway', T0 + 30 * DAY, logger), null, 'expired');

  const good = await readFile(file, 'utf8');
  const otherKey = privateKeyPem((await generateKeyPair()).privateKey);
  await writeFile(file, good.replace(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n/, otherKey.trim() + '\n'));
  t.is(await loadMaterial(dir, 'gateway', T0, logger), null, 'another key');
  await writeFile(file, good.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/, ''));
  t.is(await loadMaterial(dir, 'gateway', T0, logger), null, 'no certificate');
});

test('the earlier layout (gateway.key, gateway.crt, ca.crt) is read once and moved into gateway.pem', async (t) => {
  const { dir, keeper, nextInstall, installed } = await setup(t);
  keeper.start();
  await nextInstall(1);
  await keeper.close();
  const m = installed[0]!;
  await rm(materialFile(dir, 'gateway'));
  await writeFile(join(dir, 'gateway.key'), m.key, { mode: 0o600 });
  await writeFile(join(dir, 'gateway.crt'), m.certificate);
  t.is((await loadMaterial(dir, 'gateway', T0, logger))?.serial, m.serial);
  t.is((await stat(materialFile(dir, 'gateway'))).mode & 0o777, 0o600);
  await t.throwsAsync(stat(join(dir, 'gateway.key')), { code: 'ENOENT' });
  await t.throwsAsync(stat(join(dir, 'gateway.crt')), { code: 'ENOENT' });
  t.is((await loadMaterial(dir, 'gateway', T0, logger))?.serial, m.serial);
});

test('a certificate that cannot be stored, or whose onInstalled throws, stays in use; only the save is tried again', async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'edgeml-agent-pki-'));
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  // DATA/tls cannot be made: a file is in the way (as good as a full disk).
  const blocker = join(parent, 'data');
  await writeFile(blocker, '');
  let throws = 1;
  const { clock, hub, keeper, installed, nextInstall } = await setup(t, 'gateway', {
    dir: join(blocker, 'tls'),
    onInstalled: () => {
      if (throws-- > 0) throw new Error('the gateway is not listening yet');
    },
  });
  keeper.start();
  await nextInstall(1);
  t.is(keeper.current(), installed[0]!);
  // The renewal timer and the save's backoff: no new request.
  await waitUntil(() => clock.pending() === 2);
  t.is(hub.tried, 1);
  await rm(blocker);
  await mkdir(blocker);
  clock.advance(500);
  await eventually(async () => (await loadMaterial(join(blocker, 'tls'), 'gateway', clock.now(), logger))?.serial === installed[0]!.serial);
  await keeper.close();
  t.is(hub.tried, 1, 'the certificate was not thrown away');
});

test('an answer that comes after the request timed out is used when it holds that request\'s key (it cost an issued certificate)', async (t) => {
  const { clock, hub, requests, keeper, installed, nextInstall } = await setup(t, 'client');
  hub.holdAnswers = true;
  keeper.start();
  await hub.requested(1);
  clock.advance(30_000);
  // The keeper waits out its backoff before asking again.
  await waitUntil(() => clock.pending() === 1 && hub.held.length === 1);
  t.true(requests.answer(hub.held[0]!));
  await nextInstall(1);
  t.is(keeper.current()?.serial, installed[0]!.serial);
  // Only the renewal timer: the backoff was cut short and nothing more is asked for.
  t.is(clock.pending(), 1);
  await keeper.close();
  t.is(hub.tried, 1, 'not asked again once the late answer was installed');
});

test('a late answer is taken for five minutes after its timeout, then ignored', async (t) => {
  const clock = new ManualClock(T0);
  const sent: CertificateRequest[] = [];
  const late: CertificateAnswer[] = [];
  const requests = new CertificateRequests({ clock, send: async (r) => void sent.push(r) });
  const answerTo = (r: CertificateRequest): CertificateAnswer => ({ v: 1, id: r.id, purpose: r.purpose, error: { code: 'X', message: 'late' } });
  const first = requests.request('gateway', 'csr', (a) => late.push(a));
  await waitUntil(() => sent.length === 1);
  clock.advance(30_000);
  await t.throwsAsync(first);
  const second = requests.request('gateway', 'csr', (a) => late.push(a));
  await waitUntil(() => sent.length === 2);
  clock.advance(30_000);
  await t.throwsAsync(second);
  t.true(requests.answer(answerTo(sent[0]!)));
  t.deepEqual(late.map((a) => a.id), [sent[0]!.id]);
  t.false(requests.answer(answerTo(sent[0]!)), 'once');
  clock.advance(5 * 60_000);
  t.false(requests.answer(answerTo(sent[1]!)), 'too late');
  t.is(late.length, 1);
  t.is(clock.pending(), 0);
});

test('an answer that does not hold our key, or is not signed by the answered CA, is refused', async (t) => {
  const ca = await makeTestCa(new Date(T0 - DAY));
  const other = await makeTestCa(new Date(T0 - DAY), 'CN=another CA');
  const keys = await generateKeyPair();
  const key = privateKeyPem(keys.privateKey);
  const csr = await createCsr('client', keys, { commonName: 'dev-1', names: [] });
  const certificate = await signCsr(ca, csr, new Date(T0), new Date(T0 + DAY));
  t.is(checkMaterial('client', { key, certificate, ca: ca.pem }, T0).serial, new X509Certificate(certificate).serialNumber);
  const otherKey = privateKeyPem((await generateKeyPair()).privateKey);
  t.throws(() => checkMaterial('client', { key: otherKey, certificate, ca: ca.pem }, T0), { message: /does not hold this device key/ });
  t.throws(() => checkMaterial('client', { key, certificate, ca: other.pem }, T0), { message: /was not signed by the CA/ });
});

test('one request at a time: the next is sent once the one before is answered (the hub takes one per device)', async (t) => {
  const clock = new ManualClock(T0);
  const sent: CertificateRequest[] = [];
  const requests = new CertificateRequests({ clock, send: async (r) => void sent.push(r) });
  const gateway = requests.request('gateway', 'gateway-csr');
  const client = requests.request('client', 'client-csr');
  await waitUntil(() => sent.length === 1);
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  t.is(sent.length, 1, 'the client request waits');
  t.true(requests.answer({ v: 1, id: sent[0]!.id, purpose: 'gateway', error: { code: 'X', message: 'g' } }));
  await waitUntil(() => sent.length === 2);
  t.is(sent[1]!.purpose, 'client');
  t.true(requests.answer({ v: 1, id: sent[1]!.id, purpose: 'client', error: { code: 'X', message: 'c' } }));
  t.is((await gateway).purpose, 'gateway');
  t.is((await client).purpose, 'client');
  requests.close();
  await t.throwsAsync(requests.request('gateway', 'late'), { code: ErrorCodes.AGENT_CERTIFICATE_FAILED });
  t.is(sent.length, 2);
});

test('a stored gateway certificate for other names is served until a new one for the names of now comes', async (t) => {
  const first = await setup(t);
  first.keeper.start();
  await first.nextInstall(1);
  await first.keeper.close();

  const moved = await setup(t, 'gateway', { dir: first.dir, host: '127.0.0.9' });
  t.truthy(await moved.keeper.load(), 'the stored one is still used');
  moved.keeper.start();
  await moved.nextInstall(1);
  t.true(moved.installed[0]!.names.includes('IP Address:127.0.0.9'));
  await moved.keeper.close();

  const same = await setup(t, 'gateway', { dir: first.dir, host: '127.0.0.9' });
  t.truthy(await same.keeper.load());
  same.keeper.start();
  // close waits for a request under way: none was sent.
  await same.keeper.close();
  t.is(same.hub.tried, 0, 'the names match: nothing asked');
});

test('on each reconnection the gateway names are compared again, and a change is asked for at most every five minutes', async (t) => {
  const { clock, hub, keeper, installed, nextInstall, served } = await setup(t);
  keeper.start();
  await nextInstall(1);
  await waitUntil(() => clock.pending() === 1);
  keeper.start();
  t.is(clock.pending(), 1, 'same names: the renewal stays scheduled');
  // DHCP gave an address after boot.
  served.host = '127.0.0.9';
  keeper.start();
  await nextInstall(2);
  t.true(installed[1]!.names.includes('IP Address:127.0.0.9'));
  await waitUntil(() => clock.pending() === 1);
  served.host = '127.0.0.10';
  keeper.start();
  t.is(clock.pending(), 1, 'not again within five minutes');
  clock.advance(NAMES_RENEWAL_INTERVAL_MS);
  keeper.start();
  await nextInstall(3);
  t.true(installed[2]!.names.includes('IP Address:127.0.0.10'));
  t.is(hub.asked.length, 3);
});
