/**
 * The agent's configuration rules for TLS and credentials that the schema alone cannot say
 * (agent/config.ts loadAgentConfig): a plain gateway only on loopback unless allowed, one token
 * source, certificate auth only over mqtts://.
 */
import test from 'ava';
import { loadAgentConfig } from '../../agent/config.js';
import { ErrorCodes } from '../../shared/errors.js';

const load = (flags: Record<string, unknown>) => loadAgentConfig({ flags: { deviceId: 'gw-1', ...flags }, env: {} });
const invalid = { code: ErrorCodes.CONFIG_INVALID };

test('the gateway is HTTPS by default, and may be plain HTTP on loopback', (t) => {
  t.is(load({}).gatewayTls, 'auto');
  for (const gateway of ['127.0.0.1:8090', '127.3.2.1:0', '[::1]:8090', 'localhost:8090']) {
    t.is(load({ gateway, gatewayTls: 'off' }).gatewayTls, 'off', gateway);
  }
});

test('a plain HTTP gateway off loopback is refused naming --gateway-tls and --allow-plain-gateway, unless allowed', (t) => {
  for (const gateway of ['0.0.0.0:8090', '[::]:8090', '10.0.4.17:8090', 'cam-07.example:8090']) {
    const err = t.throws(() => load({ gateway, gatewayTls: 'off' }), invalid);
    t.regex(err?.message ?? '', /--gateway-tls.*--allow-plain-gateway/s, gateway);
    t.is(load({ gateway, gatewayTls: 'off', allowPlainGateway: true }).gatewayTls, 'off');
    t.is(load({ gateway }).gatewayTls, 'auto');
  }
});

test('a token and a token file together are refused', (t) => {
  const err = t.throws(() => load({ token: 't', tokenFile: '/etc/edgeml/token' }), invalid);
  t.regex(err?.message ?? '', /--token-file/);
  t.false(err?.message.includes("'t'") ?? true, 'the token is not in the message');
  t.is(load({ tokenFile: '/etc/edgeml/token' }).tokenFile, '/etc/edgeml/token');
});

test('certificate auth needs an mqtts:// hub', (t) => {
  const err = t.throws(() => load({ auth: 'cert', hub: 'mqtt://127.0.0.1:1883' }), invalid);
  t.regex(err?.message ?? '', /--auth cert.*mqtts:\/\//);
  t.is(load({ auth: 'cert', hub: 'mqtts://hub.example:8883' }).auth, 'cert');
});

test('an advertised URL must speak what the gateway serves: https:// with --gateway-tls auto, http:// with off', (t) => {
  const plain = t.throws(() => load({ advertiseUrl: 'http://10.0.4.17:8090' }), invalid);
  t.regex(plain?.message ?? '', /--advertise-url.*--gateway-tls auto/s);
  t.is(load({ advertiseUrl: 'https://10.0.4.17:8090' }).advertiseUrl, 'https://10.0.4.17:8090');
  const tls = t.throws(() => load({ advertiseUrl: 'https://127.0.0.1:8090', gatewayTls: 'off' }), invalid);
  t.regex(tls?.message ?? '', /--advertise-url.*--gateway-tls off/s);
  t.is(load({ advertiseUrl: 'http://127.0.0.1:8090', gatewayTls: 'off' }).gatewayTls, 'off');
});

test('a plain mqtt:// hub off loopback is refused (the token would cross in clear) unless --allow-plain-mqtt', (t) => {
  for (const hub of ['mqtt://10.0.0.2:1883', 'mqtt://hub.example:1883', 'mqtt://[fd00::2]:1883']) {
    const err = t.throws(() => load({ hub }), invalid);
    t.regex(err?.message ?? '', /--hub.*--allow-plain-mqtt/s, hub);
    t.is(load({ hub, allowPlainMqtt: true }).hub, hub);
  }
  for (const hub of ['mqtt://127.0.0.1:1883', 'mqtt://localhost:1883', 'mqtt://[::1]:1883', 'mqtts://hub.example:8883']) t.is(load({ hub }).hub, hub);
});
