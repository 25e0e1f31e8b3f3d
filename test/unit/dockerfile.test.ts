import test from 'ava';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import { dockerfileString, imageLabels, renderDockerfile } from '../../hub/builds/dockerfile.js';

const manifest: ManifestVersion = {
  name: 'iris-onnx',
  version: 3,
  digest: `sha256:${'a'.repeat(64)}`,
  runtime: 'node',
  models: [{ name: 'iris', version: 2, digest: `sha256:${'b'.repeat(64)}` }],
  score: { filename: 'score.js', digest: `sha256:${'c'.repeat(64)}`, size: 10 },
  deps: null,
  schema: { input: {}, output: {}, sample: {} },
  env: { GREETING: 'say "hi" to $USER \\o/' },
  description: '',
  createdAt: '2026-11-24T00:00:00.000Z',
  createdBy: { keyId: 'k', keyName: 'n' },
};

test('layers go from least to most often changed: runtime, dependencies, app, models', (t) => {
  const text = renderDockerfile({ runtime: 'node', baseImage: 'reg/base:1', env: {}, labels: {} });
  const order = ['COPY runtime/', 'COPY deps/${TARGETARCH}/', 'COPY app/', 'COPY models/'].map((line) => text.indexOf(line));
  t.true(order.every((i) => i >= 0), text);
  t.deepEqual([...order].sort((a, b) => a - b), order);
  t.true(text.startsWith('ARG BASE_IMAGE=reg/base:1\nFROM ${BASE_IMAGE}\n'));
  t.regex(text, /^CMD \["node","\/opt\/edgeml\/runtime\/server\.mjs"\]$/m, 'exec form, so the server gets SIGTERM');
  t.regex(text, /^USER 65534:65534$/m);
});

test('python images install requirements with the extra CA as a build secret, never a layer', (t) => {
  const text = renderDockerfile({ runtime: 'python', baseImage: 'b', env: {}, labels: {} });
  t.regex(text, /RUN --mount=type=secret,id=extra-ca,required=false/);
  t.regex(text, /cat \/etc\/ssl\/certs\/ca-certificates\.crt \/run\/secrets\/extra-ca > \/tmp\/edgeml-ca\.pem; export PIP_CERT=\/tmp\/edgeml-ca\.pem/, 'the extra CA is added to the system bundle');
  t.regex(text, /rm -f \/tmp\/edgeml-ca\.pem/, 'and the combined bundle is gone before the layer is written');
  t.regex(text, /^CMD \["python3","\/opt\/edgeml\/runtime\/server\.py"\]$/m);
  t.false(text.includes('COPY deps/${TARGETARCH}'), 'python dependencies are installed in the image, not per host arch');
});

test('user env values are quoted so quotes, backslashes and $ stay literal', (t) => {
  t.is(dockerfileString('say "hi" to $USER \\o/'), '"say \\"hi\\" to \\$USER \\\\o/"');
  t.throws(() => dockerfileString('two\nlines'));
  const text = renderDockerfile({ runtime: 'node', baseImage: 'b', env: manifest.env, labels: {} });
  t.regex(text, /^ENV GREETING="say \\"hi\\" to \\\$USER \\\\o\/"$/m);
});

test('labels name the manifest, its digest and the pinned models', (t) => {
  const labels = imageLabels(manifest);
  t.is(labels['io.edgeml.manifest'], 'iris-onnx:3');
  t.is(labels['io.edgeml.manifest.digest'], manifest.digest);
  t.deepEqual(JSON.parse(labels['io.edgeml.models']!), manifest.models);
  const text = renderDockerfile({ runtime: 'node', baseImage: 'b', env: {}, labels });
  t.regex(text, /^LABEL io\.edgeml\.models="\[\{\\"name\\":\\"iris\\"/m);
  const folded = renderDockerfile({ runtime: 'node', baseImage: 'b', env: {}, labels: { 'org.opencontainers.image.description': 'line one\nline two' } });
  t.regex(folded, /^LABEL org\.opencontainers\.image\.description="line one line two"$/m, 'a multi-line description is folded');
});
