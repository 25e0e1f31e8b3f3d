/**
 * The broker URL `device enroll` tells a device (hub/config.ts advertisedBroker): the advertised URL
 * (--mqtt-advertise, EDGEML_HUB_MQTT_ADVERTISE), else the listen address as bound, mqtts:// when
 * the broker speaks TLS; a wildcard address gives way to the host name. An advertised URL whose
 * scheme contradicts the broker's TLS is a configuration error.
 */
import test from 'ava';
import { advertisedBroker, loadHubConfig } from '../../hub/config.js';
import { renderEnrolled } from '../../cli/commands/devices.js';
import type { DeviceEnrollment } from '../../shared/api/devices.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';

const host = () => 'hub-7.lan';

test('without an advertised URL, the bound address with the scheme of the broker', (t) => {
  t.is(advertisedBroker({}, { host: '127.0.0.1', port: 41883 }, false, host), 'mqtt://127.0.0.1:41883');
  t.is(advertisedBroker({}, { host: '::1', port: 8883 }, true, host), 'mqtts://[::1]:8883');
  t.is(advertisedBroker({}, { host: '0.0.0.0', port: 8883 }, true, host), 'mqtts://hub-7.lan:8883');
  t.is(advertisedBroker({}, { host: '::', port: 1883 }, false, host), 'mqtt://hub-7.lan:1883');
});

test('an advertised URL is told as it is, from a flag or the environment', (t) => {
  t.is(advertisedBroker({ mqttAdvertise: 'mqtts://hub.example:8883' }, { host: '0.0.0.0', port: 8883 }, true, host), 'mqtts://hub.example:8883');
  const fromEnv = loadHubConfig({ flags: { mqtt: '0.0.0.0:8883' }, env: { EDGEML_HUB_MQTT_ADVERTISE: 'mqtts://203.0.113.9:18883' } });
  t.is(fromEnv.mqttAdvertise, 'mqtts://203.0.113.9:18883');
  t.is(loadHubConfig({ flags: { mqttAdvertise: 'mqtt://[::1]:1883' }, env: {} }).mqttAdvertise, 'mqtt://[::1]:1883');
});

test('an advertised URL must be mqtt(s)://HOST:PORT with the scheme the broker speaks', (t) => {
  const bad = (flags: Record<string, string>, pattern: RegExp) => {
    const err = t.throws(() => loadHubConfig({ flags, env: {} }));
    t.true(isEdgemlError(err, ErrorCodes.CONFIG_INVALID), String(err));
    t.regex(err!.message, pattern);
  };
  bad({ mqttAdvertise: 'mqtt://127.0.0.1:1883', mqtt: '0.0.0.0:8883' }, /--mqtt-advertise.*must be mqtts:\/\//);
  bad({ mqttAdvertise: 'mqtts://127.0.0.1:1883' }, /--mqtt-advertise.*must be mqtt:\/\/: the broker does not speak TLS/);
  for (const url of ['http://hub:1883', 'mqtt://hub', 'mqtt://hub:1883/x', 'hub:1883']) bad({ mqttAdvertise: url }, /mqttAdvertise/);
});

test('enroll prints the agent command line with the broker, and --hub-ca for mqtts', (t) => {
  const enrolled = { id: 'gw-1', labels: {}, token: 'emd_secret', broker: 'mqtt://127.0.0.1:41883' } as unknown as DeviceEnrollment;
  const text = renderEnrolled(enrolled);
  t.regex(text, /^ {2}edgeml agent start --hub mqtt:\/\/127\.0\.0\.1:41883 --device-id gw-1$/m);
  t.regex(text, /with the token in EDGEML_AGENT_TOKEN/);
  t.is(text.split('emd_secret').length, 2, 'the token once, never on the command line');
  t.regex(renderEnrolled({ ...enrolled, broker: 'mqtts://hub.example:8883' }), /edgeml agent start --hub mqtts:\/\/hub\.example:8883 --device-id gw-1 --hub-ca hub-ca\.pem\n\(hub-ca\.pem: the hub's CA, from `edgeml hub ca`/);
});
