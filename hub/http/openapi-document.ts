/**
 * The hub's OpenAPI document without a running hub: every route registered over inert
 * dependencies (no route runs), for the client generator and the tests that compare against it.
 */
import { pino } from 'pino';
import { buildHttpServer, type HttpDeps } from './server.js';

/** What fastify reads from a plugin's options (some plugins get a dependency as their options). */
const PLUGIN_OPTIONS = new Set(['then', 'name', 'prefix', 'logLevel', 'logSerializers']);

/** Stands for any dependency: reading a property gives another stand-in; calling one fails. */
function inert(path: string, callable = true): unknown {
  const fail = (): never => {
    throw new Error(`openApiDocument: ${path} was called while only the routes were being registered`);
  };
  // A dependency itself is no function: fastify calls a function given as a plugin's options.
  return new Proxy(callable ? fail : {}, {
    get: (_target, key) => (typeof key === 'symbol' || PLUGIN_OPTIONS.has(key) ? undefined : inert(`${path}.${key}`)),
    apply: fail,
  });
}

export async function openApiDocument(version = '0.0.0'): Promise<Record<string, unknown>> {
  const deps = new Proxy({} as HttpDeps, {
    get: (_target, key) => {
      if (key === 'logger') return pino({ level: 'silent' });
      if (key === 'health') return { version };
      if (key === 'https') return undefined;
      return inert(String(key), false);
    },
  });
  const app = await buildHttpServer(deps);
  try {
    await app.ready();
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}
