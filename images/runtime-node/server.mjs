#!/usr/bin/env node
// edgeml scoring runtime for Node (>= 18, plain JavaScript: the image runs Debian bookworm's
// nodejs). Serves the user's score.js on $HOST:$PORT; see images/README.md, "Runtimes".
//
//   EDGEML_APP_DIR=/opt/edgeml/app EDGEML_MODEL_DIR=/opt/edgeml/models PORT=8080 node server.mjs
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { createLog, messageOf } from './lib/log.mjs';
import { createScoringService } from './lib/service.mjs';

const log = createLog();

function readConfig(env) {
  const number = (name, fallback, { min, max = Number.MAX_SAFE_INTEGER, integer = true }) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
      throw new Error(`${name}=${JSON.stringify(raw)}: must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return value;
  };
  return {
    host: env.HOST || '127.0.0.1',
    port: number('PORT', 8080, { min: 0, max: 65535 }),
    appDir: resolve(env.EDGEML_APP_DIR || '/opt/edgeml/app'),
    modelDir: resolve(env.EDGEML_MODEL_DIR || '/opt/edgeml/models'),
    maxBodyBytes: number('EDGEML_MAX_BODY_BYTES', 10 * 1024 * 1024, { min: 1 }),
    drainSeconds: number('EDGEML_DRAIN_SECONDS', 30, { min: 0, integer: false }),
    title: env.EDGEML_APP_NAME || 'edgeml scoring service',
    version: env.EDGEML_APP_VERSION || '0.0.0',
  };
}

function main() {
  let config;
  try {
    config = readConfig(process.env);
  } catch (err) {
    log.fatal('invalid configuration', { error: messageOf(err) });
    process.exit(2);
  }
  // The user's init() reads its models from here, defaults included.
  process.env.EDGEML_APP_DIR = config.appDir;
  process.env.EDGEML_MODEL_DIR = config.modelDir;

  process.on('uncaughtException', (err) => {
    log.fatal('uncaught exception', { error: messageOf(err), stack: err instanceof Error ? err.stack : undefined });
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.error('unhandled promise rejection (ignored)', { error: messageOf(err), stack: err instanceof Error ? err.stack : undefined });
  });

  log.info('starting', { runtime: 'node', node: process.version, pid: process.pid, appDir: config.appDir, modelDir: config.modelDir });
  const service = createScoringService(config, log);
  service.loadSchema();

  const server = createServer(service.handle);
  server.once('error', (err) => {
    log.fatal('cannot listen', { host: config.host, port: config.port, error: messageOf(err) });
    process.exit(1);
  });
  server.listen(config.port, config.host, () => {
    const address = server.address();
    log.info('listening', { host: config.host, port: address.port, url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}` });
    service.start();
  });

  let stopping = false;
  const shutdown = (signal) => {
    if (stopping) {
      // A stop retried by the orchestrator (an agent restarted mid-stop) must not cut the drain
      // short; the drain has its own bound. Ctrl-C twice is a person who wants out now.
      if (signal === 'SIGTERM') {
        log.info('SIGTERM again: still draining', { inFlight: service.inFlight });
        return;
      }
      log.warn('second signal: exiting without waiting', { signal, inFlight: service.inFlight });
      process.exit(1);
    }
    stopping = true;
    const started = Date.now();
    const timer = setTimeout(() => {
      log.error('drain timed out; closing remaining connections', { inFlight: service.inFlight, drainSeconds: config.drainSeconds });
      server.closeAllConnections?.();
      process.exit(1);
    }, config.drainSeconds * 1000);
    // Stops listening at once (new connections are refused); the callback runs once every
    // connection has closed.
    server.close(() => {
      clearTimeout(timer);
      log.info('stopped', { drainedMs: Date.now() - started });
      process.exit(0);
    });
    log.info('shutting down: no new connections, draining requests in flight', { signal, inFlight: service.inFlight, drainSeconds: config.drainSeconds });
    // Idle keep-alive connections would hold server.close() open: close them now, and each
    // connection whose request finishes from here on (answers carry Connection: close).
    const closeIdle = () => server.closeIdleConnections?.();
    service.beginDrain(() => setImmediate(closeIdle));
    closeIdle();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main();
