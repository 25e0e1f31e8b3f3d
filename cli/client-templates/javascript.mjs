#!/usr/bin/env node
// A client for the edgeml service __EDGEML_SERVICE__ (written by `edgeml service client`).
// Node.js 18+, built-in modules only. node:https rather than fetch: fetch cannot be given a CA
// without a dependency, and the gateway's certificate comes from the hub's CA.
//
//   export __EDGEML_KEY_ENV_NAME__=...           # the service key `edgeml deploy` printed
//   edgeml hub ca > hub-ca.pem && export EDGEML_SERVICE_CA=$PWD/hub-ca.pem
//   node client.mjs input.json                # or: node client.mjs - < input.json
//
// Sample input: __EDGEML_SAMPLE__
// From your code: `import { score } from './client.mjs'; const answer = await score({...});`
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

const URL_ = "__EDGEML_SCORE_URL__";
const KEY_ENV = "__EDGEML_KEY_ENV__";
// With this set, the hub's CA alone is trusted for the gateway.
const CA_ENV = 'EDGEML_SERVICE_CA';
// A busy (429) or starting (503) service is asked again after its Retry-After, within these bounds.
const MAX_TRIES = 5;
const MAX_WAIT_SECONDS = 30;
const DEFAULT_RETRY_AFTER = 1;

export class ScoreError extends Error {}

function post(body, key, ca) {
  const target = new URL(URL_);
  const transport = target.protocol === 'https:' ? https : http;
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` };
  return new Promise((resolve, reject) => {
    const req = transport.request(target, { method: 'POST', headers, timeout: 60_000, ...(ca ? { ca } : {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

function detail(text) {
  try {
    const { error } = JSON.parse(text);
    if (error?.message) return `${error.message} [${error.code}]`;
  } catch {
    // not the gateway's JSON error: shown as it is
  }
  return text.trim().slice(0, 300);
}

function retryAfter(value) {
  const seconds = Number(value);
  return value !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_RETRY_AFTER;
}

/** Scores one input (any JSON value) and resolves to the service's answer. */
export async function score(payload) {
  const key = process.env[KEY_ENV];
  if (!key) throw new ScoreError(`set ${KEY_ENV} to the service key`);
  const caFile = process.env[CA_ENV];
  let ca;
  try {
    ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  } catch (err) {
    throw new ScoreError(`${CA_ENV} ${caFile}: ${err.code ?? err.message}`);
  }
  const body = JSON.stringify(payload);
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await post(body, key, ca);
    } catch (err) {
      throw new ScoreError(`cannot reach ${URL_}: ${err.code ?? err.message}`);
    }
    if (res.status === 200) {
      try {
        return JSON.parse(res.text);
      } catch {
        throw new ScoreError(`${URL_} answered 200 with no JSON: ${detail(res.text)}`);
      }
    }
    const delay = retryAfter(res.retryAfter);
    if ((res.status === 429 || res.status === 503) && attempt < MAX_TRIES && waited + delay <= MAX_WAIT_SECONDS) {
      await sleep(delay * 1000);
      waited += delay;
      continue;
    }
    throw new ScoreError(`${URL_} answered ${res.status}: ${detail(res.text)}`);
  }
}

async function main(path = '-') {
  let payload;
  try {
    payload = JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
  } catch (err) {
    process.stderr.write(`error: input ${path}: ${err.message}\n`);
    return 2;
  }
  try {
    process.stdout.write(`${JSON.stringify(await score(payload))}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main(process.argv[2]);
