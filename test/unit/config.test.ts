/**
 * Config loading (shared/config-loader.ts) through the hub's and the agent's schemas: defaults,
 * precedence flags > env > file, unknown keys with hints, errors that name key and source, freezing.
 * Only the config-file cases touch the filesystem (loadConfig takes a path): they write a temp file
 * under os.tmpdir() and remove it in teardown.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_ENV_PREFIX, AgentConfigSchema, loadAgentConfig } from '../../agent/config.js';
import { HUB_ENV_PREFIX, HubConfigSchema, loadHubConfig, retentionDays } from '../../hub/config.js';
import { envName, loadConfig } from '../../shared/config-loader.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/** Writes `content` (an object is JSON-encoded) to a fresh temp file, removed when the test ends. */
function configFile(t: ExecutionContext, content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeml-config-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'config.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Runs `fn`, expects an EdgemlError with code CONFIG_INVALID, and returns its message. */
function configErrorMessage(t: ExecutionContext, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.CONFIG_INVALID);
  return err?.message ?? '';
}

// --- envName -------------------------------------------------------------------------------

test('envName turns a camelCase key into PREFIX_SNAKE_CASE', (t) => {
  t.is(envName('EDGEML_HUB_', 'http'), 'EDGEML_HUB_HTTP');
  t.is(envName('EDGEML_HUB_', 'logLevel'), 'EDGEML_HUB_LOG_LEVEL');
  t.is(envName('EDGEML_AGENT_', 'deviceId'), 'EDGEML_AGENT_DEVICE_ID');
  t.is(envName('EDGEML_AGENT_', 'telemetryInterval'), 'EDGEML_AGENT_TELEMETRY_INTERVAL');
});

test('every agent key can be set through the env var envName names', (t) => {
  const values: Record<string, string> = {
    hub: 'mqtts://hub.example:8883',
    deviceId: 'gateway-07',
    token: 'tok-123',
    hubCa: '/etc/edgeml/hub-ca.pem',
    data: '/var/lib/edgeml',
    feedbackQuota: '32m',
    gateway: '0.0.0.0:9000',
    advertiseUrl: 'https://10.0.4.17:9000',
    platform: 'linux/arm/v7',
    telemetryInterval: '1m',
    telemetryQueue: '8m',
    captureQueue: '1g',
    logQueue: '16m',
    healthTimeout: '10m',
    minFreeDisk: '2g',
    assumeMemory: '1.5g',
    memoryMargin: '256m',
    pullStallTimeout: '5m',
    tokenFile: '/etc/edgeml/device.token',
    auth: 'token',
    gatewayTls: 'off',
    allowPlainGateway: 'true',
    allowPlainMqtt: 'true',
    logLevel: 'debug',
  };
  t.deepEqual(Object.keys(values).sort(), Object.keys(AgentConfigSchema.properties).sort(), 'test covers every key');
  for (const [key, value] of Object.entries(values)) {
    const env = { [envName(AGENT_ENV_PREFIX, key)]: value, EDGEML_AGENT_DEVICE_ID: key === 'deviceId' ? value : 'dev-1' };
    const config = loadAgentConfig({ flags: {}, env }) as Record<string, unknown>;
    // Booleans arrive as strings from the environment and are coerced.
    t.is(typeof config[key] === 'boolean' ? String(config[key]) : config[key], value, `env ${envName(AGENT_ENV_PREFIX, key)}`);
  }
});

test('every hub key can be set through the env var envName names', (t) => {
  const values: Record<string, string> = {
    data: '/srv/edgeml',
    http: '[::1]:0',
    mqtt: '0.0.0.0:1884',
    mqttTlsCert: '/etc/edgeml/broker.crt',
    mqttTlsKey: '/etc/edgeml/broker.key',
    mqttMaxPacket: '1m',
    mqttMaxConnecting: '500',
    registry: 'registry.local:5001',
    maxUpload: '512m',
    maxArchiveFiles: '5000',
    imagePrefix: 'team-a/edgeml',
    baseImageNode: 'registry.local:5001/base/node:20',
    baseImagePython: 'python:3.11-slim',
    extraCa: '/etc/ssl/corp-ca.pem',
    smokeTimeout: '90s',
    uploadIdleTimeout: '5s',
    telemetryDir: '/srv/telemetry',
    telemetryRetention: '7d',
    caCert: '/etc/edgeml/ca.crt',
    caKey: '/etc/edgeml/ca.key',
    tls: 'auto',
    tlsCert: '/etc/edgeml/hub.crt',
    tlsKey: '/etc/edgeml/hub.key',
    tlsSan: 'hub.example,10.0.4.2',
    mqttTls: 'auto',
    mqttAdvertise: 'mqtt://hub.example:1883',
    deviceCertLifetime: '7d',
    logLevel: 'trace',
  };
  t.deepEqual(Object.keys(values).sort(), Object.keys(HubConfigSchema.properties).sort(), 'test covers every key');
  // A certificate goes with its key: each is set with its partner.
  const partner: Record<string, string> = { caCert: 'caKey', caKey: 'caCert', tlsCert: 'tlsKey', tlsKey: 'tlsCert', mqttTlsCert: 'mqttTlsKey', mqttTlsKey: 'mqttTlsCert' };
  for (const [key, value] of Object.entries(values)) {
    const other = partner[key];
    const env = { [envName(HUB_ENV_PREFIX, key)]: value, ...(other ? { [envName(HUB_ENV_PREFIX, other)]: values[other] } : {}) };
    const config = loadHubConfig({ flags: {}, env }) as Record<string, unknown>;
    // Numbers arrive as strings from the environment and are coerced.
    t.is(String(config[key]), value, `env ${envName(HUB_ENV_PREFIX, key)}`);
  }
});

// --- defaults, freezing, ignored inputs -------------------------------------------------------

test('hub defaults are filled when nothing is given', (t) => {
  t.deepEqual(
    { ...loadHubConfig({ flags: {}, env: {} }) },
    {
      data: './.edgeml/hub',
      http: '127.0.0.1:8080',
      mqtt: '127.0.0.1:1883',
      mqttMaxPacket: '257k',
      mqttMaxConnecting: 32,
      registry: '127.0.0.1:5000',
      maxUpload: '2g',
      maxArchiveFiles: 10000,
      imagePrefix: 'edgeml',
      smokeTimeout: '5m',
      uploadIdleTimeout: '60s',
      telemetryRetention: '30d',
      deviceCertLifetime: '30d',
      logLevel: 'info',
    },
    'the base images, the extra CA and the telemetry directory stay absent: the hub derives or skips them',
  );
});

test('agent defaults are filled around the required device id; optional keys stay absent', (t) => {
  const config = loadAgentConfig({ flags: { deviceId: 'gw-1' }, env: {} });
  t.deepEqual(
    { ...config },
    {
      hub: 'mqtt://127.0.0.1:1883',
      deviceId: 'gw-1',
      data: './.edgeml/agent',
      gateway: '127.0.0.1:8090',
      telemetryInterval: '10s',
      telemetryQueue: '64m',
      captureQueue: '64m',
      logQueue: '8m',
      healthTimeout: '3m',
      minFreeDisk: '512m',
      memoryMargin: '128m',
      pullStallTimeout: '2m',
      auth: 'token',
      gatewayTls: 'auto',
      allowPlainGateway: false,
      allowPlainMqtt: false,
      logLevel: 'info',
    },
  );
  t.false('token' in config);
  t.false('platform' in config);
  t.false('advertiseUrl' in config);
  t.false('assumeMemory' in config, 'the autoscaler reads the device memory unless told to assume a figure');
});

test('the result is frozen', (t) => {
  const config = loadHubConfig({ flags: {}, env: {} });
  t.true(Object.isFrozen(config));
  t.throws(() => {
    (config as { http: string }).http = '0.0.0.0:1';
  }, { instanceOf: TypeError });
  t.is(config.http, '127.0.0.1:8080');
});

test('undefined flags are ignored and do not hide env values or defaults', (t) => {
  const config = loadHubConfig({
    flags: { http: undefined, mqtt: undefined, logLevel: undefined },
    env: { EDGEML_HUB_HTTP: '10.0.0.1:80' },
  });
  t.is(config.http, '10.0.0.1:80');
  t.is(config.mqtt, '127.0.0.1:1883');
  t.is(config.logLevel, 'info');
});

test('undefined env values are ignored', (t) => {
  const config = loadHubConfig({ flags: {}, env: { EDGEML_HUB_HTTP: undefined, EDGEML_HUB_NOT_A_KEY: undefined } });
  t.is(config.http, '127.0.0.1:8080');
});

test('env vars without the prefix, or with the other process prefix, are ignored', (t) => {
  const config = loadHubConfig({
    flags: {},
    env: { PATH: '/usr/bin', HOME: '/root', EDGEML_AGENT_DEVICE_ID: 'gw-1', EDGEML_HUB: 'x', HTTP: '1.2.3.4:5' },
  });
  t.is(config.http, '127.0.0.1:8080');
  t.false('deviceId' in config);
});

test('flags that are not config keys (e.g. the --config path itself) are not copied into the result', (t) => {
  const config = loadHubConfig({ flags: { config: '/etc/edgeml.json', http: '1.2.3.4:5' }, env: {} });
  t.is(config.http, '1.2.3.4:5');
  t.false('config' in config);
});

test('loading does not mutate the caller\'s flags or env objects', (t) => {
  const flags = { deviceId: 'gw-1' };
  const env = { EDGEML_AGENT_LOG_LEVEL: 'warn' };
  loadAgentConfig({ flags, env });
  t.deepEqual(flags, { deviceId: 'gw-1' });
  t.deepEqual(env, { EDGEML_AGENT_LOG_LEVEL: 'warn' });
});

// --- precedence ---------------------------------------------------------------------------------

test('precedence: flag beats env beats file, per key', (t) => {
  const file = configFile(t, { http: '1.1.1.1:1', mqtt: '1.1.1.1:2', registry: '1.1.1.1:3', data: '/from/file' });
  const config = loadHubConfig({
    file,
    env: { EDGEML_HUB_HTTP: '2.2.2.2:1', EDGEML_HUB_MQTT: '2.2.2.2:2' },
    flags: { http: '3.3.3.3:1' },
  });
  t.is(config.http, '3.3.3.3:1', 'flag over env and file');
  t.is(config.mqtt, '2.2.2.2:2', 'env over file');
  t.is(config.registry, '1.1.1.1:3', 'file when nothing else');
  t.is(config.data, '/from/file');
  t.is(config.logLevel, 'info', 'default when no source sets it');
});

test('precedence without a file: flag beats env', (t) => {
  const config = loadAgentConfig({
    flags: { deviceId: 'from-flag', logLevel: 'error' },
    env: { EDGEML_AGENT_DEVICE_ID: 'from-env', EDGEML_AGENT_LOG_LEVEL: 'debug', EDGEML_AGENT_GATEWAY: '0.0.0.0:1' },
  });
  t.is(config.deviceId, 'from-flag');
  t.is(config.logLevel, 'error');
  t.is(config.gateway, '0.0.0.0:1');
});

test('a required key may come from the config file alone', (t) => {
  const file = configFile(t, { deviceId: 'file-dev', token: 's3cret' });
  const config = loadAgentConfig({ flags: {}, env: {}, file });
  t.is(config.deviceId, 'file-dev');
  t.is(config.token, 's3cret');
});

test('file: undefined is the same as no file', (t) => {
  t.is(loadHubConfig({ flags: {}, env: {}, file: undefined }).http, '127.0.0.1:8080');
});

// --- unknown keys -------------------------------------------------------------------------------

test('an unknown config-file key is rejected with a did-you-mean hint and the file path', (t) => {
  const file = configFile(t, { htpp: '1.2.3.4:5' });
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file }));
  t.regex(message, /unknown key "htpp"/);
  t.true(message.includes(file), message);
  t.regex(message, /did you mean "http"\?/);
});

test('an unknown config-file key far from every known key lists the known keys', (t) => {
  const file = configFile(t, { completelyDifferent: 1 });
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file }));
  t.regex(message, /unknown key "completelyDifferent"/);
  t.regex(message, /known: "data", "http", "mqtt", "mqttTlsCert", "mqttTlsKey", "mqttMaxPacket", "mqttMaxConnecting", "registry", "maxUpload", "maxArchiveFiles", "imagePrefix", .*"logLevel"/);
});

test('an unknown prefixed env var is rejected with a hint naming the right env var', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1' }, env: { EDGEML_AGENT_DEVICEID: 'gw-2' } }));
  t.regex(message, /unknown environment variable EDGEML_AGENT_DEVICEID/);
  t.regex(message, /did you mean EDGEML_AGENT_DEVICE_ID\?/);
});

test('a misspelt hub env var gets a hint naming the hub env var', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: { EDGEML_HUB_LOGLEVEL: 'debug' } }));
  t.regex(message, /unknown environment variable EDGEML_HUB_LOGLEVEL/);
  t.regex(message, /did you mean EDGEML_HUB_LOG_LEVEL\?/);
});

test('an unknown prefixed env var far from every key lists the known env vars', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: { EDGEML_HUB_ZZZZZZZZZZ: '1' } }));
  t.regex(message, /EDGEML_HUB_ZZZZZZZZZZ/);
  t.regex(message, /known: EDGEML_HUB_DATA, EDGEML_HUB_HTTP, EDGEML_HUB_MQTT, EDGEML_HUB_MQTT_TLS_CERT, EDGEML_HUB_MQTT_TLS_KEY, EDGEML_HUB_MQTT_MAX_PACKET, EDGEML_HUB_MQTT_MAX_CONNECTING, EDGEML_HUB_REGISTRY, EDGEML_HUB_MAX_UPLOAD, EDGEML_HUB_MAX_ARCHIVE_FILES, EDGEML_HUB_IMAGE_PREFIX, .*EDGEML_HUB_LOG_LEVEL/);
});

// --- bad values name the key and the source ---------------------------------------------------

test('a bad flag value names the key and the flag', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: { http: 'not-an-address' }, env: {} }));
  t.regex(message, /^invalid configuration: http: /);
  t.regex(message, /\(from flag --http\)/);
  t.regex(message, /127\.0\.0\.1:8080/, 'quotes an example of the expected shape');
});

test('a bad env value names the key and the env var', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: {}, env: { EDGEML_AGENT_DEVICE_ID: '-leading-dash' } }));
  t.regex(message, /deviceId: /);
  t.regex(message, /\(from environment variable EDGEML_AGENT_DEVICE_ID\)/);
});

test('a bad camelCase flag value names the kebab-case flag', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1', telemetryInterval: 'soon' }, env: {} }));
  t.regex(message, /telemetryInterval: /);
  t.regex(message, /\(from flag --telemetry-interval\)/);
});

test('a telemetry interval under 1s is refused, naming the key and the flag', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1', telemetryInterval: '500ms' }, env: {} }));
  t.regex(message, /telemetryInterval \(--telemetry-interval\) must be at least 1s, not 500ms/);
  t.is(loadAgentConfig({ flags: { deviceId: 'gw-1', telemetryInterval: '1s' }, env: {} }).telemetryInterval, '1s');
});

test('a telemetry or capture queue that cannot hold one largest message is refused', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1' }, env: { EDGEML_AGENT_CAPTURE_QUEUE: '100k' } }));
  t.regex(message, /captureQueue \(--capture-queue\) must be at least 257k.*not 100k/);
  configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1', telemetryQueue: '256k' }, env: {} }));
  t.is(loadAgentConfig({ flags: { deviceId: 'gw-1', telemetryQueue: '257k' }, env: {} }).telemetryQueue, '257k');
});

test('a bad file value names the key and the config file', (t) => {
  const file = configFile(t, { mqtt: 'no port here' });
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file }));
  t.regex(message, /mqtt: /);
  t.true(message.includes(`(from config file ${file})`), message);
});

test('the source named is the one that won: a bad flag over a good env var blames the flag', (t) => {
  const message = configErrorMessage(t, () =>
    loadHubConfig({ flags: { registry: 'bad' }, env: { EDGEML_HUB_REGISTRY: '127.0.0.1:5000' } }),
  );
  t.regex(message, /\(from flag --registry\)/);
  t.notRegex(message, /EDGEML_HUB_REGISTRY/);
});

test('a bad log level names the key and its env var', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: { EDGEML_HUB_LOG_LEVEL: 'loud' } }));
  t.regex(message, /logLevel/);
  t.regex(message, /\(from environment variable EDGEML_HUB_LOG_LEVEL\)/);
});

// Regression: a union of literals made Ajv report only its first branch (`must be "fatal"`);
// levels are an `enum` now, so every allowed value is listed.
test('a bad log level lists the allowed levels, not just the first one', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: { logLevel: 'loud' }, env: {} }));
  for (const level of ['info', 'debug', 'warn']) t.true(message.includes(level), `${level} missing from: ${message}`);
});

test('a non-string flag for a string key is rejected, naming key and flag', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: { http: 8080 }, env: {} }));
  t.regex(message, /http: /);
  t.regex(message, /\(from flag --http\)/);
});

test('an empty env value for a minLength key is rejected, naming the env var', (t) => {
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: { EDGEML_HUB_DATA: '' } }));
  t.regex(message, /data: /);
  t.regex(message, /EDGEML_HUB_DATA/);
});

test('a missing deviceId names the flag, the env var and the config-file key', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: {}, env: {} }));
  t.regex(message, /deviceId: is required/);
  t.regex(message, /--device-id/);
  t.regex(message, /EDGEML_AGENT_DEVICE_ID/);
  t.regex(message, /"deviceId" in the config file/);
});

test('an agent hub URL that is not mqtt(s):// is rejected with an example', (t) => {
  const message = configErrorMessage(t, () => loadAgentConfig({ flags: { deviceId: 'gw-1', hub: 'http://hub:1883' }, env: {} }));
  t.regex(message, /hub: must look like "mqtt:\/\/127\.0\.0\.1:1883"/);
  t.regex(message, /\(from flag --hub\)/);
});

// --- config file problems ------------------------------------------------------------------------

test('a config file that does not exist is a CONFIG_INVALID error naming the path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeml-config-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'nope.json');
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file: missing }));
  t.true(message.includes(`cannot read config file ${missing}`), message);
  t.regex(message, /ENOENT/);
});

test('a config file that is not JSON is a CONFIG_INVALID error', (t) => {
  const file = configFile(t, '{ http: 1.2.3.4:5 ');
  const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file }));
  t.true(message.includes(`config file ${file} is not valid JSON`), message);
});

for (const [label, text] of [
  ['an array', '["http"]'],
  ['null', 'null'],
  ['a string', '"http"'],
  ['a number', '42'],
] as const) {
  test(`a config file holding ${label} is rejected`, (t) => {
    const file = configFile(t, text);
    const message = configErrorMessage(t, () => loadHubConfig({ flags: {}, env: {}, file }));
    t.true(message.includes(`config file ${file} must hold a JSON object`), message);
  });
}

test('loadConfig works with any prefix and schema it is given', (t) => {
  const message = configErrorMessage(t, () => loadConfig({ schema: HubConfigSchema, envPrefix: 'X_' }, { flags: {}, env: { X_HTTPS: '1' } }));
  t.regex(message, /did you mean X_HTTP\?/);
  t.is(loadConfig({ schema: HubConfigSchema, envPrefix: 'X_' }, { flags: {}, env: { X_HTTP: '9.9.9.9:9' } }).http, '9.9.9.9:9');
});

test('EDGEML_HUB_CONFIG names the config file; a --config flag wins over it', (t) => {
  const fromEnv = configFile(t, { http: '127.0.0.1:1111' });
  const fromFlag = configFile(t, { http: '127.0.0.1:2222' });
  t.is(loadHubConfig({ flags: {}, env: { EDGEML_HUB_CONFIG: fromEnv } }).http, '127.0.0.1:1111');
  t.is(loadHubConfig({ flags: {}, env: { EDGEML_HUB_CONFIG: fromEnv }, file: fromFlag }).http, '127.0.0.1:2222');
  t.is(loadAgentConfig({ flags: { deviceId: 'd' }, env: { EDGEML_AGENT_CONFIG: configFile(t, { data: '/x' }) } }).data, '/x');
});

test('an MQTT packet cap below the largest telemetry message, or above what MQTT can frame, is refused naming the flag', (t) => {
  for (const size of ['64k', '256k', '257m']) {
    const err = t.throws(() => loadHubConfig({ flags: { mqttMaxPacket: size }, env: {} }), { instanceOf: EdgemlError });
    t.is(err.code, ErrorCodes.CONFIG_INVALID);
    t.regex(err.message, new RegExp(`mqttMaxPacket \\(--mqtt-max-packet\\) must be between 257\\.0 KB .* not ${size}`));
  }
  t.is(loadHubConfig({ flags: { mqttMaxPacket: '1m' }, env: {} }).mqttMaxPacket, '1m');
});

test('telemetry retention is whole days', (t) => {
  t.is(retentionDays(loadHubConfig({ flags: { telemetryRetention: '14d' }, env: {} })), 14);
  for (const bad of ['0d', '12h', '30', 'd']) {
    t.throws(() => loadHubConfig({ flags: { telemetryRetention: bad }, env: {} }), { code: 'EDGEML_E_CONFIG_INVALID' }, bad);
  }
});

test('deviceCertLifetime is between 10s and 397d, naming --device-cert-lifetime', (t) => {
  for (const ok of ['10s', '15s', '30d', '397d']) t.is(loadHubConfig({ flags: { deviceCertLifetime: ok }, env: {} }).deviceCertLifetime, ok);
  for (const bad of ['9s', '500ms', '398d']) {
    t.regex(configErrorMessage(t, () => loadHubConfig({ flags: { deviceCertLifetime: bad }, env: {} })), new RegExp(`--device-cert-lifetime.*between 10s and 397d.*not ${bad}`));
  }
});

test('each --tls-san entry is a DNS name (a leading *. allowed) or an IP address', (t) => {
  t.is(loadHubConfig({ flags: { tlsSan: 'hub.example,*.edge.example,10.0.4.2,fd00::1' }, env: {} }).tlsSan, 'hub.example,*.edge.example,10.0.4.2,fd00::1');
  for (const bad of ['hub..example', 'a.*.example', '-hub.example', '1:2:3', '*']) {
    t.regex(configErrorMessage(t, () => loadHubConfig({ flags: { tlsSan: `ok.example,${bad}` }, env: {} })), new RegExp(`--tls-san.*${JSON.stringify(bad).replace(/[.*]/g, '\\$&')}`), bad);
  }
});
