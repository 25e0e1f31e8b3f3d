/**
 * Data capture's pure part (agent/gateway/capture.ts): the sampling decision, redaction at any
 * depth, the cap with its truncation mark (never half a character), and bodies withheld when they
 * cannot be redacted.
 */
import test from 'ava';
import { CAPTURE_KEEP_BYTES, capturedBody, REDACTED, sampled } from '../../agent/gateway/capture.js';
import type { CaptureSettings } from '../../shared/protocol.js';

const settings = (overrides: Partial<CaptureSettings> = {}): CaptureSettings => ({ rate: 1, maxBodyBytes: 1024, redact: [], ...overrides });
const whole = (body: string | Buffer) => {
  const kept = Buffer.from(body);
  return { kept, bytes: kept.length };
};

test('rate 0 never samples, rate 1 always; no settings is off; a rate in between follows random()', (t) => {
  const draws = Array.from({ length: 1000 }, (_, i) => i / 1000);
  t.false(draws.some((r) => sampled(settings({ rate: 0 }), () => r)));
  t.true(draws.every((r) => sampled(settings({ rate: 1 }), () => r)));
  t.false(sampled(undefined, () => 0));
  t.is(draws.filter((r) => sampled(settings({ rate: 0.25 }), () => r)).length, 250);
});

test('JSON within the cap is kept as JSON; bytes is the size on the wire', (t) => {
  const body = '{ "features": [5.1, 3.5],\n  "id": "a" }';
  t.deepEqual(capturedBody(whole(body), settings()), { json: { features: [5.1, 3.5], id: 'a' }, bytes: Buffer.byteLength(body), truncated: false });
  t.deepEqual(capturedBody(whole('[1,2]'), settings()), { json: [1, 2], bytes: 5, truncated: false });
  t.deepEqual(capturedBody(whole(''), settings({ redact: ['x'] })), { text: '', bytes: 0, truncated: false }, 'an empty body has nothing to redact');
});

test('named fields are redacted at any depth, in arrays too, whatever their value', (t) => {
  const body = {
    password: 'hunter2',
    user: { name: 'ann', ssn: '123', history: [{ ssn: '456', kept: 1 }, [{ password: { nested: true } }]] },
    list: [null, 'ssn', 3],
    ssnx: 'not named',
    Password: 'case does not matter',
    SSN: 'nor here',
  };
  const captured = capturedBody(whole(JSON.stringify(body)), settings({ redact: ['password', 'Ssn'] }));
  t.deepEqual(captured.json, {
    password: REDACTED,
    user: { name: 'ann', ssn: REDACTED, history: [{ ssn: REDACTED, kept: 1 }, [{ password: REDACTED }]] },
    list: [null, 'ssn', 3],
    ssnx: 'not named',
    Password: REDACTED,
    SSN: REDACTED,
  });
  t.false(captured.truncated);
  t.false(JSON.stringify(captured).includes('hunter2'));
});

test('JSON over the cap: the redacted serialization, cut at the cap and marked', (t) => {
  const body = JSON.stringify({ secret: 's'.repeat(50), data: 'd'.repeat(100) });
  const captured = capturedBody(whole(body), settings({ maxBodyBytes: 40, redact: ['secret'] }));
  t.deepEqual(captured, { text: `{"secret":"${REDACTED}","data":"ddddddddd`.slice(0, 40), bytes: body.length, truncated: true });
  t.is(Buffer.byteLength(captured.text!), 40);
  // Redaction can bring a body under the cap: then it is whole JSON.
  t.deepEqual(capturedBody(whole(body.replace('d'.repeat(100), 'd')), settings({ maxBodyBytes: 40, redact: ['secret'] })).json, { secret: REDACTED, data: 'd' });
});

test('a cut never splits a character: the text ends before it, within the cap', (t) => {
  // "é" is 2 bytes, "€" 3, "😀" 4: every cap lands somewhere inside one of them.
  const text = 'aé€😀'.repeat(20);
  for (let cap = 1; cap <= 40; cap++) {
    const captured = capturedBody(whole(text), settings({ maxBodyBytes: cap }));
    t.true(Buffer.byteLength(captured.text!) <= cap && Buffer.byteLength(captured.text!) > cap - 4, `cap ${cap}`);
    t.true(text.startsWith(captured.text!), `cap ${cap}: no replacement character at the end`);
    t.true(captured.truncated);
  }
  const json = JSON.stringify({ k: '€'.repeat(20) });
  const cut = capturedBody(whole(json), settings({ maxBodyBytes: 10 }));
  t.is(cut.text, '{"k":"€');
  t.true(cut.truncated);
});

test('bytes that are not UTF-8 still make text within the cap', (t) => {
  const captured = capturedBody(whole(Buffer.alloc(30, 0xff)), settings({ maxBodyBytes: 10 }));
  t.true(Buffer.byteLength(captured.text!) <= 10);
  t.true(captured.truncated);
});

test('a body that is not JSON: text (cut at the cap) without a redact list, withheld with one', (t) => {
  t.deepEqual(capturedBody(whole('plain words'), settings()), { text: 'plain words', bytes: 11, truncated: false });
  t.deepEqual(capturedBody(whole('plain words'), settings({ maxBodyBytes: 5 })), { text: 'plain', bytes: 11, truncated: true });
  t.deepEqual(capturedBody(whole('password=hunter2'), settings({ redact: ['password'] })), { bytes: 16, truncated: false, withheld: true });
  t.deepEqual(capturedBody(whole('{"password": "hunter2"'), settings({ redact: ['password'] })), { bytes: 22, truncated: false, withheld: true }, 'broken JSON');
});

test('a body larger than what the gateway keeps: withheld with a redact list, else its first bytes', (t) => {
  const big = Buffer.from(JSON.stringify({ password: 'x'.repeat(CAPTURE_KEEP_BYTES) }));
  const partial = { kept: big.subarray(0, CAPTURE_KEEP_BYTES), bytes: big.length };
  t.deepEqual(capturedBody(partial, settings({ redact: ['password'] })), { bytes: big.length, truncated: true, withheld: true });
  t.deepEqual(capturedBody(partial, settings({ maxBodyBytes: 16 })), { text: '{"password":"xxx', bytes: big.length, truncated: true });
});

test('JSON nested too deep to walk is treated as unparsable, not thrown', (t) => {
  const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
  t.deepEqual(capturedBody(whole(deep), settings({ redact: ['x'] })), { bytes: deep.length, truncated: false, withheld: true });
});
