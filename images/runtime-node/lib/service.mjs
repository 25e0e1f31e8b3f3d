// The scoring service: loads schema.json and the scoring module, runs init() once, and answers
// GET /health, POST /score and GET /swagger.json. It never exits on the user's errors: a failed
// load or init() is reported by /health, a failed run() by a 500.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { compileDecoder, DecodeError } from './decode.mjs';
import { errorBody, readBody, sendJson } from './http-util.mjs';
import { loadScoringModule } from './load-app.mjs';
import { messageOf } from './log.mjs';
import { openApiDocument } from './openapi.mjs';
import { compileCheck, readScoringSchema } from './schema.mjs';

// Loaded through require so it is the very instance the scoring code's `edgeml-runtime` resolves to.
const { metricsSnapshot } = createRequire(import.meta.url)('./edgeml-runtime.cjs');

const ROUTES = 'POST /score, GET /health, GET /swagger.json, GET /metrics';
const MAX_OUTPUT_WARNINGS = 50;

/**
 * @param {{appDir: string, maxBodyBytes: number, title: string, version: string}} config
 * @param {ReturnType<import('./log.mjs').createLog>} log
 */
export function createScoringService(config, log) {
  let phase = 'starting'; // → 'ready' | 'failed'
  let failure;
  let app;
  let schema;
  let checkInput;
  let checkOutput;
  let decode;
  let openapi;
  let draining = false;
  let inFlight = 0;
  let onRequestDone = () => undefined;
  const outputWarnings = new Set();

  function fail(msg, err, fields = {}) {
    phase = 'failed';
    failure = messageOf(err);
    const cause = err && err.cause instanceof Error ? err.cause : err;
    log.error(msg, { ...fields, error: failure, stack: cause instanceof Error ? cause.stack : undefined });
  }

  /** Reads and compiles schema.json; cheap and synchronous, done before listening. */
  function loadSchema() {
    try {
      schema = readScoringSchema(join(config.appDir, 'schema.json'));
      checkInput = compileCheck(schema.input, 'input');
      decode = compileDecoder(schema.input);
      openapi = openApiDocument({ ...schema, title: config.title, version: config.version });
    } catch (err) {
      fail('schema failed to load', err);
      return;
    }
    try {
      checkOutput = compileCheck(schema.output, 'output');
    } catch (err) {
      log.warn('output schema does not compile; outputs are not checked', { error: messageOf(err) });
    }
  }

  /** Imports the scoring module, then runs init() once. Never rejects. */
  async function start() {
    if (phase === 'failed') return;
    const importStart = performance.now();
    try {
      app = await loadScoringModule(config.appDir);
    } catch (err) {
      fail('scoring module failed to load', err, { durationMs: Math.round(performance.now() - importStart) });
      return;
    }
    log.info('scoring module loaded', { file: app.file, durationMs: Math.round(performance.now() - importStart) });
    const initStart = performance.now();
    try {
      await app.init();
    } catch (err) {
      fail('init failed', err, { durationMs: Math.round(performance.now() - initStart) });
      return;
    }
    phase = 'ready';
    log.info('init done', { durationMs: Math.round(performance.now() - initStart) });
  }

  function answer(req, res, status, body, headers = {}, logFields = {}) {
    if (draining) headers = { ...headers, connection: 'close' };
    sendJson(res, status, body, headers);
    if (status >= 500 && body.error) {
      const fields = { status, code: body.error.code, error: body.error.message, ...logFields };
      log[status === 503 ? 'warn' : 'error'](`${req.method} ${pathOf(req)} answered ${status}`, fields);
    }
  }

  function fail503(req, res) {
    if (phase === 'failed') {
      answer(req, res, 503, errorBody('RUNTIME_E_NOT_READY', `not serving: ${failure}`));
    } else {
      answer(req, res, 503, errorBody('RUNTIME_E_NOT_READY', 'init() has not finished yet; retry shortly'), { 'retry-after': '1' });
    }
  }

  function health(req, res) {
    const headers = draining ? { connection: 'close' } : {};
    if (phase === 'ready') sendJson(res, 200, { status: 'ok' }, headers);
    else if (phase === 'failed') sendJson(res, 503, { status: 'failed', error: failure }, headers);
    else sendJson(res, 503, { status: 'starting' }, { ...headers, 'retry-after': '1' });
  }

  function warnOutput(problem) {
    if (outputWarnings.has(problem) || outputWarnings.size >= MAX_OUTPUT_WARNINGS) return;
    outputWarnings.add(problem);
    log.warn('run() output does not match the output schema (answered anyway; each problem is logged once)', { problem });
  }

  async function score(req, res) {
    const read = await readBody(req, config.maxBodyBytes);
    if (read.tooLarge) {
      const message = `request body is larger than ${config.maxBodyBytes} bytes (EDGEML_MAX_BODY_BYTES)`;
      answer(req, res, 413, errorBody('RUNTIME_E_TOO_LARGE', message), read.close ? { connection: 'close' } : {});
      return;
    }
    if (phase !== 'ready') return fail503(req, res);
    let input;
    try {
      input = JSON.parse(read.body.toString('utf8'));
    } catch (err) {
      answer(req, res, 400, errorBody('RUNTIME_E_INVALID_JSON', `request body is not valid JSON: ${err.message}`));
      return;
    }
    const invalid = checkInput(input);
    if (invalid) {
      answer(req, res, 400, errorBody('RUNTIME_E_INVALID_INPUT', invalid));
      return;
    }
    if (decode) {
      try {
        input = decode(input);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        answer(req, res, 400, errorBody('RUNTIME_E_INVALID_INPUT', err.message));
        return;
      }
    }
    let result;
    try {
      result = await app.run(input);
    } catch (err) {
      answer(req, res, 500, errorBody('RUNTIME_E_RUN_FAILED', messageOf(err)), {}, { stack: err instanceof Error ? err.stack : undefined });
      return;
    }
    let text;
    try {
      text = JSON.stringify(result === undefined ? null : result);
      if (text === undefined) throw new TypeError(`${typeof result} has no JSON form`);
    } catch (err) {
      answer(req, res, 500, errorBody('RUNTIME_E_RUN_FAILED', `run() returned a value that is not JSON: ${messageOf(err)}`));
      return;
    }
    if (checkOutput) {
      const problem = checkOutput(JSON.parse(text));
      if (problem) warnOutput(problem);
    }
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...(draining ? { connection: 'close' } : {}),
    });
    res.end(text);
  }

  async function route(req, res) {
    const path = pathOf(req);
    if (req.method === 'POST' && path === '/score') return score(req, res);
    if (req.method === 'GET' && path === '/health') return health(req, res);
    if (req.method === 'GET' && path === '/metrics') return sendJson(res, 200, metricsSnapshot(), draining ? { connection: 'close' } : {});
    if (req.method === 'GET' && path === '/swagger.json') {
      if (!openapi) return fail503(req, res);
      return sendJson(res, 200, openapi, draining ? { connection: 'close' } : {});
    }
    answer(req, res, 404, errorBody('RUNTIME_E_NOT_FOUND', `no route ${req.method} ${path} (routes: ${ROUTES})`));
  }

  /** The node:http request listener. */
  function handle(req, res) {
    inFlight += 1;
    res.once('close', () => {
      inFlight -= 1;
      onRequestDone();
    });
    route(req, res).catch((err) => {
      if (err && err.clientAborted) {
        log.info('client went away', { method: req.method, path: pathOf(req), error: messageOf(err) });
        res.destroy();
        return;
      }
      log.error('request failed', { method: req.method, path: pathOf(req), error: messageOf(err) });
      if (!res.headersSent) answer(req, res, 500, errorBody('RUNTIME_E_RUN_FAILED', messageOf(err)), { connection: 'close' });
      else res.destroy();
    });
  }

  return {
    loadSchema,
    start,
    handle,
    get inFlight() {
      return inFlight;
    },
    /** From now on every answer closes its connection; `onDone` runs after each finished request. */
    beginDrain(onDone) {
      draining = true;
      onRequestDone = onDone;
    },
  };
}

function pathOf(req) {
  const url = req.url || '/';
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}
