#!/usr/bin/env node
// After the test suite: looks for every secret the tests recorded (test/helpers/secret-ledger.ts)
// in every artefact they left (process output, `ps` snapshots, `docker inspect`), and for any
// private key in PEM (no artefact has a reason to hold one), and exits 1 naming each file a secret is in. A secret is named by its start and length, never printed whole.
// Usage: node scripts/check-secret-leaks.mjs [DIR]   (default: $EDGEML_TEST_ARTEFACTS)
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const LEDGER_FILE = 'secrets.ledger.jsonl';
const dir = process.argv[2] ?? process.env.EDGEML_TEST_ARTEFACTS;
if (!dir) {
  process.stderr.write('check-secret-leaks: give the artefacts directory (argument or EDGEML_TEST_ARTEFACTS)\n');
  process.exit(2);
}

const fingerprint = (secret) => `${secret.slice(0, 6)}…(${secret.length} chars)`;
// Keys the run made are not in the ledger (devices and the hub's CA make their own): any one is a leak.
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

let ledger;
try {
  ledger = readFileSync(join(dir, LEDGER_FILE), 'utf8');
} catch (err) {
  process.stderr.write(`check-secret-leaks: no ledger at ${join(dir, LEDGER_FILE)} (${err.code ?? err.message}): did the tests run with EDGEML_TEST_ARTEFACTS=${dir}?\n`);
  process.exit(2);
}
const secrets = new Map();
for (const line of ledger.split('\n').filter(Boolean)) {
  const { kind, secret, source } = JSON.parse(line);
  if (!secrets.has(secret)) secrets.set(secret, { kind, source });
}

function* files(root) {
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile() && !(root === dir && entry.name === LEDGER_FILE)) yield path;
  }
}

let leaks = 0;
let scanned = 0;
for (const path of files(dir)) {
  scanned++;
  const text = readFileSync(path, 'latin1');
  if (PRIVATE_KEY_PEM.test(text)) {
    leaks++;
    process.stdout.write(`LEAK ${relative(dir, path)}: a private key in PEM (${PRIVATE_KEY_PEM.exec(text)[0]})\n`);
  }
  for (const [secret, { kind, source }] of secrets) {
    if (!text.includes(secret)) continue;
    leaks++;
    process.stdout.write(`LEAK ${relative(dir, path)}: ${kind} ${fingerprint(secret)} (created by ${source})\n`);
  }
}
process.stdout.write(`check-secret-leaks: ${secrets.size} secrets, ${scanned} artefacts in ${dir}: ${leaks === 0 ? 'no leak' : `${leaks} leak(s)`}\n`);
process.exit(leaks === 0 ? 0 : 1);
