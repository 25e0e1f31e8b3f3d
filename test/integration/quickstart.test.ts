/**
 * The README's main-job line runs scripts/quickstart.sh; this keeps it true.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';

test('scripts/quickstart.sh --check: hub and enrolled agent online, the example built for two platforms, deployed and scored through the gateway, its telemetry and capture at the hub', async (t) => {
  t.timeout(15 * 60_000);
  const dir = await tempDir(t, 'edgeml-quickstart-');
  const script = fileURLToPath(new URL('../../scripts/quickstart.sh', import.meta.url));
  const r = await exec('bash', [script, '--check'], {
    env: { ...process.env, EDGEML_HUB_HTTP: '127.0.0.1:0', EDGEML_HUB_MQTT: '127.0.0.1:0', EDGEML_AGENT_GATEWAY: '127.0.0.1:0', EDGEML_QUICKSTART_DIR: dir, EDGEML_QUICKSTART_DEVICE: 'qs-device' },
    timeoutMs: 15 * 60_000,
  });
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /"devicesOnline":1/);
  t.regex(r.stdout, /"id":"qs-device","status":"online","labels":\{"site":"demo"\}/);
  t.regex(r.stdout, /created manifest iris-scorer:1 +sha256:[0-9a-f]{64}/);
  t.regex(r.stdout, /iris +1 +[0-9a-f]{12} .* onnx +production +example=iris/);
  t.regex(r.stdout, /service iris on qs-device: key in /);
  t.regex(r.stdout, /POST https:\/\/127\.0\.0\.1:\d+\/v1\/services\/iris\/score \{"features":\[\[5\.1,3\.5,1\.4,0\.2\]\]\} -> \{"predictions":\[\{"label":"setosa"/);
  t.regex(r.stdout, /fleet: +[1-9]\d* requests/, 'the hub shows the service telemetry');
  t.regex(r.stdout, /captured requests: [1-9]\d* in /);
  t.regex(r.stdout, /quickstart: ok/);
  t.regex(r.stdout.trimEnd().split('\n').at(-1) ?? '', /^portal: http:\/\/127\.0\.0\.1:[1-9]\d*\/ui\/ +\(sign in with the admin API key in \S+admin\.key\)$/, 'the main job ends with the portal URL');
});
