/**
 * Records whose keys follow a pattern (labels, tags, a manifest's env) refuse keys off the pattern.
 * A JSON Schema `patternProperties` alone only checks keys that match: a label key with a quote and
 * a value that is not a string was stored, and an env name with a newline would have become a line
 * of its own in an image's Dockerfile.
 */
import test from 'ava';
import { Tags } from '../../shared/api/common.js';
import { Labels } from '../../shared/api/devices.js';
import { ManifestCreate } from '../../shared/api/manifests.js';
import { compileChecker } from '../../shared/schema.js';

test('labels: a key off the pattern is refused whatever its value; a good one passes', (t) => {
  const check = compileChecker(Labels);
  t.false(check({ "'; DROP TABLE x; --": 42 }).ok);
  t.false(check({ 'site lab': 'x' }).ok);
  t.true(check({ site: 'lab', 'example.com/ring': 'canary' }).ok);
});

test('tags: a key off the pattern is refused; at most 64', (t) => {
  const check = compileChecker(Tags);
  t.false(check({ 'bad key': 'v' }).ok);
  t.false(check(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))).ok);
  t.true(check({ team: 'vision' }).ok);
});

test("a manifest's env: a name off the pattern (a newline would be a Dockerfile line of its own) is refused", (t) => {
  const check = compileChecker(ManifestCreate.properties.env);
  t.true(check({ LOG_LEVEL: 'info' }).ok);
  const refused = check({ 'A\nRUN touch /pwned': 'x' });
  t.false(refused.ok);
  t.regex((refused as { error: string }).error, /not a known field/);
});
