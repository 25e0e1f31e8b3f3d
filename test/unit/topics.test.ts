/**
 * MQTT topic layout (shared/topics.ts): building and parsing device topics, device id rules.
 */
import test from 'ava';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import {
  allDevices,
  assertDeviceId,
  ChannelPublisher,
  Channels,
  devicePrefix,
  deviceTopic,
  isValidDeviceId,
  parseDeviceTopic,
  TOPIC_ROOT,
} from '../../shared/topics.js';

const VALID_IDS = ['a', 'Z', '0', 'gw-01', 'gateway.site_3', 'A-b.C_d-9', 'x'.repeat(64), '9' + '-'.repeat(63), 'constructor'];
const INVALID_IDS = [
  '',
  'x'.repeat(65),
  '-leading-dash',
  '.leading-dot',
  '_leading-underscore',
  'has space',
  ' leading-space',
  'trailing-space ',
  'a/b',
  'a+b',
  '+',
  '#',
  'a#',
  'tab\there',
  'newline\n',
  'ünïcödé',
  'a:b',
  'a*b',
  '$SYS',
];

test('the channel list is the nine v1 channels, with cmd/ack, csr and logs published by agents', (t) => {
  t.deepEqual([...Channels], ['desired', 'reported', 'telemetry', 'status', 'cmd', 'cmd/ack', 'csr', 'cert', 'logs']);
  t.deepEqual(
    Channels.filter((c) => ChannelPublisher[c] === 'agent'),
    ['reported', 'telemetry', 'status', 'cmd/ack', 'csr', 'logs'],
  );
});

for (const channel of Channels) {
  test(`deviceTopic/parseDeviceTopic round trip for ${channel}`, (t) => {
    const topic = deviceTopic('gw-01', channel);
    t.is(topic, `edgeml/v1/dev/gw-01/${channel}`);
    t.deepEqual(parseDeviceTopic(topic), { deviceId: 'gw-01', channel });
  });
}

test('round trip holds for every valid id shape', (t) => {
  for (const id of VALID_IDS) {
    for (const channel of Channels) {
      t.deepEqual(parseDeviceTopic(deviceTopic(id, channel)), { deviceId: id, channel }, `${id} ${channel}`);
    }
  }
});

test('cmd/ack is parsed as one two-level channel, not as id + extra level', (t) => {
  t.deepEqual(parseDeviceTopic('edgeml/v1/dev/dev-a/cmd/ack'), { deviceId: 'dev-a', channel: 'cmd/ack' });
});

const NOT_DEVICE_TOPICS: Array<[string, string]> = [
  ['empty string', ''],
  ['the root alone', TOPIC_ROOT],
  ['the root with a slash', `${TOPIC_ROOT}/`],
  ['another version', 'edgeml/v2/dev/gw-01/status'],
  ['another namespace', 'other/v1/dev/gw-01/status'],
  ['different case', 'EDGEML/v1/dev/gw-01/status'],
  ['a leading slash', '/edgeml/v1/dev/gw-01/status'],
  ['a prefix lookalike', 'edgeml/v1/devices/gw-01/status'],
  ['a prefix without separator', 'edgeml/v1/devgw-01/status'],
  ['$SYS', '$SYS/broker/clients'],
  ['no channel', 'edgeml/v1/dev/gw-01'],
  ['empty channel', 'edgeml/v1/dev/gw-01/'],
  ['empty id', 'edgeml/v1/dev//status'],
  ['+ as id', 'edgeml/v1/dev/+/status'],
  ['# as id', 'edgeml/v1/dev/#'],
  ['# after id', 'edgeml/v1/dev/gw-01/#'],
  ['+ as channel', 'edgeml/v1/dev/gw-01/+'],
  ['+ under cmd', 'edgeml/v1/dev/gw-01/cmd/+'],
  ['# under cmd', 'edgeml/v1/dev/gw-01/cmd/#'],
  ['unknown channel', 'edgeml/v1/dev/gw-01/reboot'],
  ['channel in wrong case', 'edgeml/v1/dev/gw-01/Status'],
  ['ack without cmd', 'edgeml/v1/dev/gw-01/ack'],
  ['extra level after channel', 'edgeml/v1/dev/gw-01/status/extra'],
  ['extra level after cmd/ack', 'edgeml/v1/dev/gw-01/cmd/ack/x'],
  ['trailing slash', 'edgeml/v1/dev/gw-01/status/'],
  ['double slash before channel', 'edgeml/v1/dev/gw-01//status'],
  ['id containing a slash', 'edgeml/v1/dev/site/gw-01/status'],
  ['id containing a slash, cmd/ack', 'edgeml/v1/dev/site/gw-01/cmd/ack'],
  ['id with a leading dash', 'edgeml/v1/dev/-gw/status'],
  ['id with a space', 'edgeml/v1/dev/gw 01/status'],
  ['id over 64 chars', `edgeml/v1/dev/${'x'.repeat(65)}/status`],
];

for (const [label, topic] of NOT_DEVICE_TOPICS) {
  test(`parseDeviceTopic returns null for ${label}`, (t) => {
    t.is(parseDeviceTopic(topic), null);
  });
}

test('a 64-char id parses, a 65-char id does not', (t) => {
  t.deepEqual(parseDeviceTopic(`edgeml/v1/dev/${'x'.repeat(64)}/status`), { deviceId: 'x'.repeat(64), channel: 'status' });
  t.is(parseDeviceTopic(`edgeml/v1/dev/${'x'.repeat(65)}/status`), null);
});

test('valid ids are accepted by isValidDeviceId and returned by assertDeviceId', (t) => {
  for (const id of VALID_IDS) {
    t.true(isValidDeviceId(id), id);
    t.is(assertDeviceId(id), id);
  }
});

for (const id of INVALID_IDS) {
  test(`assertDeviceId rejects ${JSON.stringify(id.length > 20 ? `${id.slice(0, 10)}…(${id.length})` : id)}`, (t) => {
    t.false(isValidDeviceId(id));
    const err = t.throws(() => assertDeviceId(id), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.TOPIC_INVALID);
    t.true(err?.message.includes(JSON.stringify(id)), 'message quotes the id');
  });
}

test('deviceTopic and devicePrefix refuse invalid ids with a TOPIC_INVALID error', (t) => {
  for (const id of ['', 'a/b', '+', '#', '-x', 'x'.repeat(65)]) {
    t.is(t.throws(() => deviceTopic(id, 'status'), { instanceOf: EdgemlError })?.code, ErrorCodes.TOPIC_INVALID, id);
    t.is(t.throws(() => devicePrefix(id), { instanceOf: EdgemlError })?.code, ErrorCodes.TOPIC_INVALID, id);
  }
});

test('devicePrefix is the root, the id and a trailing slash, and prefixes every topic of that device', (t) => {
  const prefix = devicePrefix('gw-01');
  t.is(prefix, 'edgeml/v1/dev/gw-01/');
  for (const channel of Channels) t.true(deviceTopic('gw-01', channel).startsWith(prefix), channel);
  t.false(deviceTopic('gw-010', 'status').startsWith(prefix), 'a longer id sharing the prefix is not under it');
});

test('allDevices is a single-level wildcard filter for one channel', (t) => {
  for (const channel of Channels) t.is(allDevices(channel), `edgeml/v1/dev/+/${channel}`);
  t.is(allDevices('cmd/ack'), 'edgeml/v1/dev/+/cmd/ack');
});

test('allDevices filters are not themselves device topics', (t) => {
  for (const channel of Channels) t.is(parseDeviceTopic(allDevices(channel)), null, channel);
});
