/**
 * MQTT message schemas (shared/protocol.ts): what decodes, what is rejected and why, and that
 * decodeMessage never throws whatever it is fed.
 */
import test from 'ava';
import {
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type Command,
  type CommandAck,
  type DesiredService,
  type DesiredState,
  type DeviceFacts,
  type MessageTypes,
  type ReportedState,
  type StatusMessage,
  type TelemetryBatch,
} from '../../shared/protocol.js';
import { Channels, type Channel } from '../../shared/topics.js';
import { capturesBatch, metricsBatch } from '../helpers/telemetry-batches.js';

const facts: DeviceFacts = {
  hostname: 'gw-01',
  platform: 'linux/arm64',
  arch: 'arm64',
  os: { distro: 'Debian', release: '12', kernel: '6.1.0' },
  cpus: 4,
  memoryBytes: 4 * 1024 ** 3,
  docker: { version: '27.0.1', apiVersion: '1.46', os: 'linux', arch: 'arm64' },
  agentVersion: '0.1.0',
};

const online: StatusMessage = { v: 1, state: 'online', since: '2024-05-01T12:00:00.000Z', facts };
const offlineLost: StatusMessage = { v: 1, state: 'offline', reason: 'lost' };
const offlineShutdown: StatusMessage = { v: 1, state: 'offline', reason: 'shutdown' };
const service: DesiredService = {
  name: 'scorer',
  revision: 2,
  image: `registry.local:5000/edgeml/scorer@sha256:${'a'.repeat(64)}`,
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: 256 * 1024 * 1024, cpus: 0.5 },
  keyHash: 'b'.repeat(64),
  models: [{ name: 'iris', version: 3, digest: `sha256:${'c'.repeat(64)}` }],
};
const desired: DesiredState = { v: 1, generation: 3, services: [service] };
const reported: ReportedState = {
  v: 1,
  observedGeneration: 3,
  phase: 'failed',
  services: [{ name: 'scorer', revision: 2, image: 'img', phase: 'failed', servingRevision: 1, progress: null, error: { code: 'AGENT_E_PULL_FAILED', message: 'pull failed' } }],
  error: { code: 'AGENT_E_PULL_FAILED', message: 'pull failed' },
};
const telemetry: TelemetryBatch = metricsBatch({ id: 'batch-1' });
const cmd: Command = { v: 1, id: 'cmd-1', name: 'ping' };
const cmdWithArgs: Command = { v: 1, id: 'cmd-2', name: 'ping', args: { verbose: true } };
const ack: CommandAck = { v: 1, id: 'cmd-1', ok: true, result: { uptimeMs: 5 } };
const ackError: CommandAck = { v: 1, id: 'cmd-1', ok: false, error: { code: 'X', message: 'no' } };

/** One valid message per channel (several for some), used as the base for the mutation tests. */
const VALID: { [C in Channel]: Array<MessageTypes[C]> } = {
  desired: [desired, { v: 1, generation: 0, services: [] }],
  reported: [reported, { v: 1, observedGeneration: 0, phase: 'idle', services: [] }],
  telemetry: [telemetry, capturesBatch(), metricsBatch({ services: {}, containers: [], from: '2024-05-01T12:00:10+02:00' })],
  status: [online, offlineLost, offlineShutdown, { ...online, facts: { ...facts, docker: null } }],
  cmd: [cmd, cmdWithArgs],
  'cmd/ack': [ack, ackError, { v: 1, id: 'a', ok: true }],
  logs: [
    { v: 1, session: 's1', seq: 0, lines: [{ ts: '2024-05-01T12:00:00.000Z', source: 'iris', replica: 1, stream: 'stderr', line: 'boom' }] },
    { v: 1, session: 's1', seq: 1, lines: [], end: { reason: 'done' } },
  ],
  csr: [{ v: 1, id: 'r-1', purpose: 'gateway', csr: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n' }],
  cert: [
    { v: 1, id: 'r-1', purpose: 'client', certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', notAfter: '2026-12-07T12:00:00Z' },
    { v: 1, id: 'r-2', purpose: 'gateway', error: { code: 'HUB_E_CERT_REFUSED', message: 'no' } },
  ],
};

function first<C extends Channel>(channel: C): MessageTypes[C] {
  return VALID[channel][0]!;
}

/** Decodes `value` (JSON-encoded) and returns the error, failing the test if it decoded. */
function rejection(channel: Channel, value: unknown): string {
  const result = decodeMessage(channel, JSON.stringify(value));
  if (result.ok) throw new Error(`expected ${channel} ${JSON.stringify(value)} to be rejected`);
  return result.error;
}

test('PROTOCOL_VERSION is 1', (t) => {
  t.is(PROTOCOL_VERSION, 1);
});

for (const channel of Channels) {
  test(`valid ${channel} messages decode to equal values, from a string and from a Buffer`, (t) => {
    for (const message of VALID[channel]) {
      const fromString = decodeMessage(channel, JSON.stringify(message));
      t.deepEqual(fromString, { ok: true, value: message });
      const fromBuffer = decodeMessage(channel, Buffer.from(JSON.stringify(message)));
      t.deepEqual(fromBuffer, { ok: true, value: message });
    }
  });

  test(`encode → decode round trip for ${channel}`, (t) => {
    for (const message of VALID[channel]) {
      const encoded = encodeMessage(channel, message);
      t.true(Buffer.isBuffer(encoded));
      t.deepEqual(JSON.parse(encoded.toString('utf8')), message);
      t.deepEqual(decodeMessage(channel, encoded), { ok: true, value: message });
    }
  });

  test(`${channel}: wrong protocol version is rejected naming v`, (t) => {
    for (const v of [2, 0, '1', null, 1.5]) {
      t.regex(rejection(channel, { ...first(channel), v }), /^v: /, `v=${JSON.stringify(v)}`);
    }
  });

  test(`${channel}: missing v is rejected naming v`, (t) => {
    const { v: _v, ...rest } = first(channel) as { v: number };
    t.is(rejection(channel, rest), 'v: is required');
  });

  test(`${channel}: an extra top-level field is rejected naming it`, (t) => {
    t.is(rejection(channel, { ...first(channel), sneaky: 1 }), 'sneaky: is not a known field');
  });

  test(`${channel}: non-object JSON is rejected`, (t) => {
    for (const text of ['[]', 'null', '1', '"str"', 'true', '[{"v":1}]']) {
      const result = decodeMessage(channel, text);
      t.false(result.ok, text);
      if (!result.ok) t.regex(result.error, /\(root\)/, text);
    }
  });
}

test('a payload that is not JSON is rejected with "not JSON"', (t) => {
  for (const text of ['', 'hello', '{', '{"v":1,}', "{'v':1}", 'undefined', 'NaN']) {
    const result = decodeMessage('status', text);
    t.false(result.ok, JSON.stringify(text));
    if (!result.ok) t.regex(result.error, /^not JSON: /, JSON.stringify(text));
  }
});

test('binary bytes are rejected as not JSON', (t) => {
  const result = decodeMessage('telemetry', Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x7b, 0x01]));
  t.false(result.ok);
  if (!result.ok) t.regex(result.error, /^not JSON: /);
});

test('status: online without since is rejected naming since', (t) => {
  const { since: _s, ...rest } = online as Extract<StatusMessage, { state: 'online' }>;
  t.is(rejection('status', rest), 'since: is required');
});

test('status: since that is not a date-time is rejected naming since', (t) => {
  for (const since of ['yesterday', '2024-05-01', '12:00:00', 1714564800000]) {
    t.regex(rejection('status', { ...online, since }), /^since: /, JSON.stringify(since));
  }
});

test('status: a negative or fractional cpu count is rejected naming facts.cpus', (t) => {
  t.regex(rejection('status', { ...online, facts: { ...facts, cpus: -1 } }), /^facts\.cpus: /);
  t.regex(rejection('status', { ...online, facts: { ...facts, cpus: 1.5 } }), /^facts\.cpus: /);
  t.regex(rejection('status', { ...online, facts: { ...facts, cpus: '4' } }), /^facts\.cpus: /);
});

test('status: nested facts fields are checked and named by path', (t) => {
  t.is(rejection('status', { ...online, facts: { ...facts, os: { ...facts.os, kernel: undefined } } }), 'facts.os.kernel: is required');
  t.is(rejection('status', { ...online, facts: { ...facts, extra: 1 } }), 'facts.extra: is not a known field');
  t.regex(rejection('status', { ...online, facts: { ...facts, memoryBytes: -5 } }), /^facts\.memoryBytes: /);
  t.regex(rejection('status', { ...online, facts: { ...facts, docker: { version: '1' } } }), /^facts\.docker/);
  t.regex(rejection('status', { ...online, facts: null }), /^facts: /);
});

test('status: an unknown state is rejected', (t) => {
  t.regex(rejection('status', { ...online, state: 'sleeping' }), /state/);
});

test('status: offline must not carry online fields', (t) => {
  t.false(decodeMessage('status', JSON.stringify({ ...offlineLost, facts })).ok);
  t.false(decodeMessage('status', JSON.stringify({ ...online, reason: 'lost' })).ok);
});

test('status: offline with a bad or missing reason is rejected', (t) => {
  t.false(decodeMessage('status', JSON.stringify({ v: 1, state: 'offline', reason: 'crashed' })).ok);
  t.false(decodeMessage('status', JSON.stringify({ v: 1, state: 'offline' })).ok);
});

// Regression: status was a plain union and errors came from its first (online) branch, naming
// `since` for a bad offline message; it is a tagged union on `state` now.
test('status: offline with a bad reason is rejected naming reason', (t) => {
  t.regex(rejection('status', { v: 1, state: 'offline', reason: 'crashed' }), /reason/);
});

test('status: offline without reason is rejected naming reason', (t) => {
  t.regex(rejection('status', { v: 1, state: 'offline' }), /reason/);
});

test('desired: generation must be a non-negative integer', (t) => {
  for (const generation of [-1, 1.5, '3', null]) {
    t.regex(rejection('desired', { ...desired, generation }), /^generation: /, JSON.stringify(generation));
  }
});

test('desired: service names must be DNS-like, images pinned by digest, limits and key hash well-formed', (t) => {
  t.regex(rejection('desired', { ...desired, services: [{ ...service, name: 'Bad_Name' }] }), /^services\.0\.name: /);
  t.regex(rejection('desired', { ...desired, services: [{ ...service, image: 'registry.local:5000/scorer:latest' }] }), /^services\.0\.image: /);
  t.regex(rejection('desired', { ...desired, services: [{ ...service, image: '' }] }), /^services\.0\.image: /);
  const { image: _image, ...noImage } = service;
  t.is(rejection('desired', { ...desired, services: [noImage] }), 'services.0.image: is required');
  t.regex(rejection('desired', { ...desired, services: [{ ...service, limits: { ...service.limits, maxConcurrent: 0 } }] }), /^services\.0\.limits\.maxConcurrent: /);
  t.regex(rejection('desired', { ...desired, services: [{ ...service, limits: { ...service.limits, cpus: 0 } }] }), /^services\.0\.limits\.cpus: /);
  t.regex(rejection('desired', { ...desired, services: [{ ...service, keyHash: 'the-key-itself' }] }), /^services\.0\.keyHash: /);
  t.regex(rejection('desired', { ...desired, services: [{ ...service, extra: true }] }), /services\.0\.extra: is not a known field/);
  t.regex(rejection('desired', { ...desired, services: {} }), /^services: /);
});

test('reported: phase must be one of the four phases', (t) => {
  t.regex(rejection('reported', { ...reported, phase: 'done' }), /phase/);
  t.is(rejection('reported', { ...reported, observedGeneration: undefined }), 'observedGeneration: is required');
  t.regex(rejection('reported', { ...reported, error: { code: 'X' } }), /^error\.message: /);
});

test('telemetry: ids, timestamps, histograms and capture bodies are checked', (t) => {
  t.regex(rejection('telemetry', { ...telemetry, id: '' }), /^id: /);
  t.regex(rejection('telemetry', { ...telemetry, id: 'x'.repeat(65) }), /^id: /);
  t.regex(rejection('telemetry', { ...telemetry, id: 'a/b' }), /^id: /);
  t.true(decodeMessage('telemetry', JSON.stringify({ ...telemetry, id: 'x'.repeat(64) })).ok);
  t.regex(rejection('telemetry', { ...telemetry, from: 'now' }), /^from: /);
  t.regex(rejection('telemetry', { ...telemetry, kind: 'traces' }), /kind/);
  t.regex(rejection('telemetry', { v: 1, kind: 'logs', id: 'l-1', lines: [], dropped: { 'Bad Name': 1 } }), /dropped/);
  t.true(decodeMessage('telemetry', JSON.stringify({ v: 1, kind: 'logs', id: 'l-1', lines: [{ ts: '2024-05-01T00:00:00.000Z', service: 'iris', replica: 1, stream: 'stderr', line: 'x'.repeat(8 * 1024) }], dropped: { iris: 3 } })).ok);
  const iris = metricsBatch().services.iris!;
  t.regex(rejection('telemetry', { ...telemetry, services: { iris: { ...iris, requests: -1 } } }), /^services\.iris\.requests: /);
  t.regex(rejection('telemetry', { ...telemetry, services: { 'Bad Name': iris } }), /services/);
  t.regex(rejection('telemetry', { ...telemetry, services: { iris: { ...iris, latencyMs: { ...iris.latencyMs, counts: [1] } } } }), /^services\.iris\.latencyMs\.counts: /);
  t.regex(rejection('telemetry', capturesBatch({ samples: [] })), /^samples: /);
  const sample = capturesBatch().samples[0]!;
  t.regex(rejection('telemetry', capturesBatch({ samples: [{ ...sample, request: { ...sample.request, bytes: 'many' as unknown as number } }] })), /^samples\.0\.request\.bytes: /);
  t.true(decodeMessage('telemetry', JSON.stringify(capturesBatch({ samples: [{ ...sample, requestId: `r-${'x'.repeat(126)}` }] }))).ok, 'a request id of up to 128 visible characters');
  for (const requestId of ['', 'a b', 'x'.repeat(129), 'é']) {
    t.regex(rejection('telemetry', capturesBatch({ samples: [{ ...sample, requestId }] })), /^samples\.0\.requestId: /, JSON.stringify(requestId));
  }
});

test('cmd: unknown command names and bad args are rejected', (t) => {
  t.regex(rejection('cmd', { ...cmd, name: 'reboot' }), /^name: /);
  t.regex(rejection('cmd', { ...cmd, args: 'x' }), /^args: /);
  t.is(rejection('cmd', { v: 1, name: 'ping' }), 'id: is required');
});

test('cmd/ack: ok must be a boolean', (t) => {
  t.regex(rejection('cmd/ack', { ...ack, ok: 'yes' }), /^ok: /);
  t.is(rejection('cmd/ack', { v: 1, id: 'a' }), 'ok: is required');
  t.regex(rejection('cmd/ack', { ...ack, error: { message: 'x' } }), /^error\.code: /);
});

test('payloads over MAX_MESSAGE_BYTES are rejected before parsing, counted in bytes', (t) => {
  t.is(MAX_MESSAGE_BYTES, 256 * 1024);
  // A valid telemetry batch padded past the limit: it would decode if size were not checked.
  const pad = 'x'.repeat(MAX_MESSAGE_BYTES);
  const big = JSON.stringify({ ...telemetry, metrics: { pad } });
  const result = decodeMessage('telemetry', big);
  t.false(result.ok);
  if (!result.ok) t.is(result.error, `payload of ${Buffer.byteLength(big)} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  t.false(decodeMessage('telemetry', Buffer.from(big)).ok);

  // Multi-byte characters: fewer chars than the limit but more bytes.
  const wide = JSON.stringify({ ...telemetry, device: { ...telemetry.device, pad: '€'.repeat(MAX_MESSAGE_BYTES / 3) } });
  t.true(wide.length < MAX_MESSAGE_BYTES);
  const wideResult = decodeMessage('telemetry', wide);
  t.false(wideResult.ok);
  if (!wideResult.ok) t.regex(wideResult.error, /exceeds/);
});

test('a payload of exactly MAX_MESSAGE_BYTES is not rejected for its size', (t) => {
  const sample = capturesBatch().samples[0]!;
  const padded = (pad: string) => JSON.stringify(capturesBatch({ samples: [{ ...sample, request: { text: pad, bytes: 1, truncated: true } }] }));
  const exact = padded('x'.repeat(MAX_MESSAGE_BYTES - padded('').length));
  t.is(Buffer.byteLength(exact), MAX_MESSAGE_BYTES);
  t.true(decodeMessage('telemetry', exact).ok);
});

const GARBAGE: Array<Buffer | string> = [
  '',
  ' ',
  '\u0000',
  'not json',
  '{',
  '}',
  '[]',
  '{}',
  'null',
  'true',
  '0',
  '-1e999',
  '"string"',
  '{"v":1}',
  '{"v":"1"}',
  '{"v":null}',
  '{"__proto__":{"v":1}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"v":1,"state":"online","since":null,"facts":{}}',
  '{"v":1,"generation":1e308,"services":[null]}',
  '{"v":1,"services":[{"name":{},"image":[]}]}',
  '{"v":1,"metrics":{"__proto__":null}}',
  '\ud800',
  '\ufeff{"v":1}',
  '['.repeat(50_000) + ']'.repeat(50_000),
  '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000),
  '['.repeat(200_000),
  Buffer.alloc(0),
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28, 0xa0, 0xa1]),
  Buffer.from('{"v":1}\u0000garbage'),
  Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20),
  Buffer.alloc(MAX_MESSAGE_BYTES, 0x5b), // '[' × limit
];

test('decodeMessage never throws and rejects garbage on every channel', (t) => {
  for (const channel of Channels) {
    for (const payload of GARBAGE) {
      const label = `${channel} ${JSON.stringify(payload.toString().slice(0, 40))}`;
      let result: ReturnType<typeof decodeMessage> | undefined;
      t.notThrows(() => {
        result = decodeMessage(channel, payload);
      }, label);
      t.false(result?.ok, label);
      if (result && !result.ok) t.true(typeof result.error === 'string' && result.error.length > 0, label);
    }
  }
  t.is(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
});

test('a message valid for one channel is rejected on every other channel', (t) => {
  for (const from of Channels) {
    for (const to of Channels) {
      if (from === to) continue;
      for (const message of VALID[from]) {
        t.false(decodeMessage(to, JSON.stringify(message)).ok, `${from} message on ${to}`);
      }
    }
  }
});
