/**
 * What the client commands print (cli/output.ts and the commands' renderers): `--json` is exactly
 * one JSON document on stdout, tables line up, and the human views show digest, size, aliases, tags,
 * lineage and files.
 */
import test from 'ava';
import { renderApiKeyCreated, renderApiKeyList } from '../../cli/commands/apikeys.js';
import { renderManifest, renderManifestList } from '../../cli/commands/manifests.js';
import { renderModelSummary, renderModelVersion, renderRegistered, renderVersionList } from '../../cli/commands/model-views.js';
import { createOutput, formatPairs, formatTime, renderFields, renderTable, shortDigest } from '../../cli/output.js';
import type { ApiKeyCreated } from '../../shared/api/apikeys.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';

/** Collects what a command writes to stdout. */
function capture() {
  const captured = { text: '' };
  return { captured, stdout: { write: (s: string) => (captured.text += s) } };
}

const DIGEST = `sha256:${'ab12'.repeat(16)}`;

function version(overrides: Partial<ModelVersion> = {}): ModelVersion {
  return {
    name: 'resnet50',
    version: 3,
    kind: 'file',
    digest: DIGEST,
    size: 12_900_000,
    files: [{ path: 'model.onnx', size: 12_900_000, digest: DIGEST }],
    framework: 'onnx',
    description: '',
    tags: { team: 'vision' },
    lineage: { runId: 'run-7', dataset: 'imagenet@2012', metrics: { accuracy: 0.93 } },
    aliases: ['production'],
    createdAt: '2024-05-01T12:34:56.789Z',
    createdBy: { keyId: 'k1', keyName: 'ci' },
    ...overrides,
  };
}

test('--json prints exactly one JSON document on stdout and the human text is not computed', (t) => {
  const { captured, stdout } = capture();
  const out = createOutput({ json: true, stdout });
  out.result({ name: 'm', version: 1 }, () => t.fail('human rendering under --json') as never);
  t.deepEqual(JSON.parse(captured.text), { name: 'm', version: 1 });
});

test('human output ends with exactly one newline', (t) => {
  const { captured, stdout } = capture();
  const out = createOutput({ json: false, stdout });
  out.result({}, () => 'done');
  out.result({}, () => 'table\n');
  t.is(captured.text, 'done\ntable\n');
});

test('renderTable aligns columns, trims trailing blanks, and says when it is empty', (t) => {
  t.is(
    renderTable(
      ['A', 'LONGER', 'Z'],
      [
        ['xx', 'y', ''],
        ['x', 'yyyyyyy', 'z'],
      ],
    ),
    'A   LONGER   Z\nxx  y\nx   yyyyyyy  z\n',
  );
  t.is(renderTable(['A'], [], '(nothing)'), '(nothing)\n');
});

test('renderFields aligns values and leaves out undefined ones', (t) => {
  t.is(
    renderFields([
      ['a', '1'],
      ['skipped', undefined],
      ['long', '2'],
    ]),
    'a:     1\nlong:  2\n',
  );
});

test('small formatters', (t) => {
  t.is(shortDigest(DIGEST), 'ab12ab12ab12');
  t.is(formatTime('2024-05-01T12:34:56.789Z'), '2024-05-01 12:34Z');
  t.is(formatTime('not a time'), 'not a time');
  t.is(formatPairs({ a: '1', b: 2 }), 'a=1,b=2');
  t.is(formatPairs({}), '-');
});

test('register prints NAME:VERSION, the full digest and the size', (t) => {
  t.is(renderRegistered(version()), `registered resnet50:3  ${DIGEST}  12.3 MB`);
});

test('model list has the promised columns and one row per version', (t) => {
  const text = renderVersionList([version(), version({ version: 2, aliases: [], tags: {}, framework: 'custom' })]);
  const [header, first, second] = text.trimEnd().split('\n');
  t.regex(header!, /^NAME\s+VERSION\s+DIGEST\s+SIZE\s+FRAMEWORK\s+ALIASES\s+TAGS\s+CREATED$/);
  t.regex(first!, /^resnet50\s+3\s+ab12ab12ab12\s+12\.3 MB\s+onnx\s+production\s+team=vision\s+2024-05-01 12:34Z$/);
  t.regex(second!, /^resnet50\s+2\s+ab12ab12ab12\s+12\.3 MB\s+custom\s+-\s+-\s+2024-05-01 12:34Z$/);
  t.is(renderVersionList([]), '(no model versions)\n');
});

test('model show NAME lists aliases, then the versions', (t) => {
  const text = renderModelSummary({ name: 'resnet50', latest: 3, aliases: { staging: 3, production: 2 }, versions: [version()] });
  t.regex(text, /^model:\s+resnet50\nlatest:\s+3\naliases:\s+production → 2,staging → 3\n\nVERSION\s+DIGEST/);
});

test('model show NAME:VERSION shows lineage, tags and files', (t) => {
  const text = renderModelVersion(version({ kind: 'directory', files: [{ path: 'sub/weights.bin', size: 10, digest: DIGEST }] }));
  for (const line of [/^model:\s+resnet50:3$/m, /^kind:\s+directory$/m, /^run:\s+run-7$/m, /^dataset:\s+imagenet@2012$/m, /^metrics:\s+accuracy=0\.93$/m, /^tags:\s+team=vision$/m, /^sub\/weights\.bin\s+10 B\s+ab12ab12ab12$/m]) {
    t.regex(text, line);
  }
  t.notRegex(text, /^description:/m, 'an empty description is left out');
  const bare = renderModelVersion(version({ lineage: { runId: null, dataset: null, metrics: {} } }));
  t.notRegex(bare, /^(run|dataset|metrics):/m);
});

test('manifest views', (t) => {
  const m: ManifestVersion = {
    name: 'fraud',
    version: 1,
    digest: DIGEST,
    runtime: 'node',
    models: [{ name: 'resnet50', version: 3, digest: DIGEST }],
    score: { filename: 'score.js', digest: DIGEST, size: 120 },
    deps: null,
    schema: { input: { type: 'object', properties: { x: { type: 'string', description: 'y'.repeat(200) } } }, output: {}, sample: { x: 'a' } },
    env: { LOG_LEVEL: 'debug' },
    description: '',
    createdAt: '2024-05-01T12:34:56.789Z',
    createdBy: { keyId: 'k1', keyName: 'ci' },
  };
  t.regex(renderManifestList([m]), /^NAME\s+VERSION\s+DIGEST\s+RUNTIME\s+MODELS\s+CREATED\nfraud\s+1\s+ab12ab12ab12\s+node\s+resnet50:3\s+2024-05-01 12:34Z\n$/);
  const detail = renderManifest(m);
  t.regex(detail, /^deps:\s+-$/m);
  t.regex(detail, /^env:\s+LOG_LEVEL=debug$/m);
  t.regex(detail, /^input:\s+\{"type":"object".{80,}…$/m, 'a long schema is cut');
});

test('apikey create shows the key once with a warning; the list never has a key column', (t) => {
  const k: ApiKeyCreated = {
    id: 'abc123abc123',
    name: 'ci',
    scope: 'deploy',
    createdAt: '2024-05-01T12:34:56.789Z',
    createdBy: null,
    revokedAt: null,
    key: 'emk_secret_value',
  };
  const created = renderApiKeyCreated(k);
  t.true(created.includes('emk_secret_value'));
  t.regex(created, /only time the key is shown/);
  const { key: _key, ...info } = k;
  const list = renderApiKeyList([info, { ...info, id: 'def', revokedAt: '2024-05-02T00:00:00.000Z', createdBy: { keyId: 'abc', keyName: 'admin' } }]);
  t.regex(list, /^ID\s+NAME\s+SCOPE\s+CREATED\s+CREATED BY\s+REVOKED\n/);
  t.regex(list, /^def\s+ci\s+deploy\s+2024-05-01 12:34Z\s+admin\s+2024-05-02 00:00Z$/m);
  t.false(list.includes('emk_'));
});
