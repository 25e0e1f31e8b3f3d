/**
 * `edgeml service client` (cli/commands/service-client.ts): each language's client, rendered from
 * its template, carries the score URL and the environment names, quoted for its language, with no
 * placeholder left; values that could break out of a literal or a comment are escaped or refused.
 * (test/integration/service-client.test.ts runs and compiles the clients against a real gateway.)
 */
import test from 'ava';
import { CLIENT_LANGUAGES, clientTemplate, parseKeyEnv, quotedLiteral, renderClient, shellQuoted } from '../../cli/commands/service-client.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';

const URL = 'https://127.0.0.1:8443/v1/services/iris-2/score';
const SPEC = { service: 'iris-2', scoreUrl: URL, keyEnv: 'IRIS_KEY', sample: { features: [5.1, 3.5, 1.4, 0.2] } };

for (const lang of CLIENT_LANGUAGES) {
  test(`the ${lang} client has the URL, the key and CA variables, the sample and no placeholder left`, (t) => {
    const source = renderClient(clientTemplate(lang), SPEC);
    t.false(/__EDGEML_/.test(source));
    t.true(source.includes(lang === 'curl' ? `URL='${URL}'` : `"${URL}"`), 'the URL as a literal of the language');
    t.true(source.includes(lang === 'curl' ? "KEY_ENV='IRIS_KEY'" : '"IRIS_KEY"'), 'the key variable as a literal');
    t.true(source.includes('export IRIS_KEY=...'), 'the usage comment names the key variable');
    t.true(source.includes('EDGEML_SERVICE_CA'));
    t.true(source.includes('Sample input: {"features":[5.1,3.5,1.4,0.2]}'));
    t.true(source.includes('the edgeml service iris-2'));
    t.false(source.includes('EDGEML_SERVICE_KEY'), 'only the variable asked for');
    for (const status of ['429', '503']) t.true(source.includes(status), `retries ${status}`);
    t.regex(source, /MAX_TRIES\s*=\s*5|MaxTries = 5/);
    t.regex(source, /MAX_WAIT_SECONDS\s*=\s*30|MaxWaitSeconds = 30/);
  });
}

test('values are quoted for each language: JSON escapes, ASCII only, shell single quotes', (t) => {
  t.is(quotedLiteral('a"b\\c\u2028é'), '"a\\"b\\\\c\\u2028\\u00e9"');
  t.is(shellQuoted("it's $HOME `x`"), "'it'\\''s $HOME `x`'");
  const odd = 'https://[::1]:8443/v1/services/x/score?a="b"&c=\'d\'';
  t.true(renderClient(clientTemplate('python'), { ...SPEC, scoreUrl: odd }).includes('URL = "https://[::1]:8443/v1/services/x/score?a=\\"b\\"&c=\'d\'"'));
  t.true(renderClient(clientTemplate('curl'), { ...SPEC, scoreUrl: odd }).includes(`URL='https://[::1]:8443/v1/services/x/score?a="b"&c='\\''d'\\'''`));
});

test('a sample cannot end its comment line, and a long one is not copied', (t) => {
  const source = renderClient(clientTemplate('javascript'), { ...SPEC, sample: { text: 'line\nnext\u2028*/ end' } });
  t.true(source.includes('// Sample input: {"text":"line\\nnext\\u2028*/ end"}'));
  const long = renderClient(clientTemplate('java'), { ...SPEC, sample: { pixels: 'A'.repeat(5000) } });
  t.regex(long, /Sample input: \(5013 characters: see `edgeml manifest show`\)/);
  t.regex(renderClient(clientTemplate('csharp'), { ...SPEC, sample: undefined }), /Sample input: \(none known/);
});

test('names that are not names are refused before anything is written', (t) => {
  for (const keyEnv of ['1KEY', 'KEY-NAME', 'KEY;rm -rf', '', 'K"EY']) {
    const err = t.throws(() => parseKeyEnv(keyEnv));
    t.true(isEdgemlError(err, ErrorCodes.CLI_INPUT_INVALID), keyEnv);
    t.throws(() => renderClient(clientTemplate('curl'), { ...SPEC, keyEnv }));
  }
  t.is(parseKeyEnv('_MY_KEY2'), '_MY_KEY2');
  t.throws(() => renderClient(clientTemplate('python'), { ...SPEC, service: 'Iris"' }));
});
