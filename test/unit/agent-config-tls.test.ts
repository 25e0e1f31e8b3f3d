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
