/**
 * What the agent shows the broker on each connection attempt (agent/link/credentials.ts): the
 * token, read again from the token file every time; with `--auth cert` the client certificate once
 * there is one, and the token again when the broker refuses that certificate, until a new one comes.
 */
import { rootCertificates } from 'node:tls';
import test from 'ava';
import { pino } from 'pino';
import { linkCredentials, type LinkCredentialsOptions } from '../../agent/link/credentials.js';
import type { TlsMaterial } from '../../agent/pki/material.js';
import { ErrorCodes } from '../../shared/errors.js';

const logger = pino({ level: 'silent' });
const ok = { refused: false };

const material = (serial: string): TlsMaterial => ({
  purpose: 'client',
  key: `key-${serial}`,
  certificate: `cert-${serial}`,
  ca: 'ca',
  serial,
  notBefore: new Date(0),
  notAfter: new Date(1),
  names: [],
});

function credentials(overrides: Partial<LinkCredentialsOptions> = {}) {
  const files = new Map<string, string>();
  let refusedCalls = 0;
  const source = linkCredentials({
    deviceId: 'dev-1',
    auth: 'token',
    storedCa: async () => undefined,
    clientCertificate: () => null,
    readFile: async (path) => {
      const content = files.get(path);
      if (content === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return content;
    },
    onCertificateRefused: () => void refusedCalls++,
    logger,
    ...overrides,
  });
  return { source, files, refusedCalls: () => refusedCalls };
}

test('a token is shown with the device id as user name', async (t) => {
  const { source } = credentials({ token: 'secret-1' });
  t.deepEqual(await source.next(ok), { username: 'dev-1', password: 'secret-1' });
  t.false(source.showsCertificate());
});

test('the token file is read (trimmed) before every attempt; unreadable or empty is a typed error', async (t) => {
  const { source, files } = credentials({ tokenFile: '/token' });
  await t.throwsAsync(source.next(ok), { code: ErrorCodes.AGENT_TOKEN_FILE_UNREADABLE, message: /cannot read the token file \/token \(ENOENT\)/ });
  files.set('/token', ' \n');
  await t.throwsAsync(source.next(ok), { code: ErrorCodes.AGENT_TOKEN_FILE_UNREADABLE, message: /is empty/ });
  files.set('/token', 'first\n');
  t.is((await source.next(ok)).password, 'first');
  files.set('/token', 'rotated\n');
  t.is((await source.next(ok)).password, 'rotated');
});

test('--hub-ca alone is trusted; without it the system CAs plus the CA stored from the hub, when there is one', async (t) => {
  const hubCa = Buffer.from('operator CA');
  t.deepEqual((await credentials({ token: 't', hubCa, storedCa: async () => 'stored' }).source.next(ok)).ca, [hubCa]);
  // A broker with an operator's certificate from a public CA stays trusted once the hub's CA is stored.
  t.deepEqual((await credentials({ token: 't', storedCa: async () => 'stored' }).source.next(ok)).ca, [...rootCertificates, 'stored']);
  t.true(rootCertificates.length > 0);
  t.is((await credentials({ token: 't' }).source.next(ok)).ca, undefined);
});

test('auth cert: the token until a client certificate exists, then the certificate without user name or password', async (t) => {
  let current: TlsMaterial | null = null;
  const { source } = credentials({ auth: 'cert', token: 'secret-1', clientCertificate: () => current });
  t.deepEqual(await source.next(ok), { username: 'dev-1', password: 'secret-1' });
  current = material('01');
  t.deepEqual(await source.next(ok), { key: 'key-01', cert: 'cert-01' });
  t.true(source.showsCertificate());
  // A renewed certificate is used from the next connection on.
  current = material('02');
  t.deepEqual(await source.next(ok), { key: 'key-02', cert: 'cert-02' });
});

test('auth cert: a refused certificate falls back to the token and asks for a new one; a new certificate is tried again', async (t) => {
  let current: TlsMaterial | null = material('01');
  const { source, refusedCalls } = credentials({ auth: 'cert', token: 'secret-1', clientCertificate: () => current });
  t.is((await source.next(ok)).cert, 'cert-01');
  t.deepEqual(await source.next({ refused: true }), { username: 'dev-1', password: 'secret-1' });
  t.is(refusedCalls(), 1);
  t.deepEqual(await source.next(ok), { username: 'dev-1', password: 'secret-1' }, 'the refused certificate is not shown again');
  // A refused token is not a refused certificate.
  await source.next({ refused: true });
  t.is(refusedCalls(), 1);
  current = material('02');
  t.is((await source.next(ok)).cert, 'cert-02');
});

test('auth cert without a token: a refused certificate is all there is to show', async (t) => {
  const { source, refusedCalls } = credentials({ auth: 'cert', clientCertificate: () => material('01') });
  t.is((await source.next(ok)).cert, 'cert-01');
  t.is((await source.next({ refused: true })).cert, 'cert-01');
  t.is(refusedCalls(), 0);
});
