// Imports the user's scoring module. score.js may be CommonJS or an ES module: `import()` takes
// both, and `init`/`run` are accepted as named exports or on the default export
// (module.exports = {init, run}). Node 18 has no module-syntax detection, so an ES-module score.js
// without "type": "module" in a package.json fails as CommonJS; it is then imported again with
// loader hooks that make the app's .js files ES modules.
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CANDIDATES = ['score.js', 'score.mjs', 'score.cjs'];

// What V8 says when CommonJS compilation meets ES-module syntax.
const ESM_IN_CJS = /Cannot use import statement outside a module|Unexpected token 'export'|Cannot use 'import\.meta' outside a module|await is only valid in async functions and the top level bodies of modules/;

export function findScoreFile(appDir) {
  for (const name of CANDIDATES) {
    const file = join(appDir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`no scoring module in ${appDir} (expected ${CANDIDATES.join(', ')})`);
}

/** `/opt/edgeml/app/score.js:3` from a SyntaxError's decorated stack, when Node put it there. */
function syntaxErrorLocation(err) {
  const stack = err && typeof err.stack === 'string' ? err.stack : '';
  const match = /^((?:file:\/\/)?\/[^\n]*?:\d+)\s*$/m.exec(stack);
  return match ? match[1].replace(/^file:\/\//, '') : undefined;
}

/** A one-line reason naming the file, e.g. `cannot load /opt/edgeml/app/score.js: SyntaxError: … (at …:3)`. */
export function describeLoadError(file, err) {
  const name = err instanceof Error ? err.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  const where = err instanceof SyntaxError ? syntaxErrorLocation(err) : undefined;
  return `cannot load ${file}: ${name}: ${message}${where ? ` (at ${where})` : ''}`;
}

/** The scoring code's `edgeml-runtime` (custom metrics), the same instance for both module kinds. */
const RUNTIME_API = 'edgeml-runtime';
const RUNTIME_API_FILE = fileURLToPath(new URL('./edgeml-runtime.cjs', import.meta.url));
let runtimeApiInstalled = false;

function installRuntimeApi() {
  if (runtimeApiInstalled) return;
  runtimeApiInstalled = true;
  // require(): Node has no public resolver hook for CommonJS, so its resolver is wrapped.
  const Module = nodeModule.Module;
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function resolveWithRuntimeApi(request, ...rest) {
    return request === RUNTIME_API ? RUNTIME_API_FILE : resolveFilename.call(this, request, ...rest);
  };
  // import: a resolve hook (Node >= 18.19; the images run 18.20).
  if (typeof nodeModule.register === 'function') {
    nodeModule.register(new URL('./resolve-hooks.mjs', import.meta.url).href, import.meta.url, { data: { runtimeUrl: pathToFileURL(RUNTIME_API_FILE).href } });
  }
}

let hooksRegistered = false;

async function importAsModule(file, appDir) {
  if (typeof nodeModule.register !== 'function') return undefined;
  if (!hooksRegistered) {
    const appDirUrl = pathToFileURL(appDir.endsWith('/') ? appDir : `${appDir}/`).href;
    nodeModule.register(new URL('./esm-hooks.mjs', import.meta.url).href, import.meta.url, { data: { appDirUrl } });
    hooksRegistered = true;
  }
  // A new URL: the failed CommonJS attempt stays cached under the plain one.
  return import(`${pathToFileURL(file).href}?edgeml-esm`);
}

function pick(mod, name) {
  for (const holder of [mod, mod && mod.default]) {
    if (holder && typeof holder[name] === 'function') return holder[name].bind(holder);
  }
  return undefined;
}

/**
 * Resolves to `{file, init, run}` (init may be a no-op) or throws an Error whose message names the
 * file and the reason; `cause` keeps the original error (and its stack) for the log.
 */
export async function loadScoringModule(appDir) {
  const file = findScoreFile(appDir);
  installRuntimeApi();
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    let cause = err;
    if (file.endsWith('.js') && err instanceof SyntaxError && ESM_IN_CJS.test(err.message)) {
      try {
        mod = await importAsModule(file, appDir);
      } catch (retryErr) {
        cause = retryErr;
      }
    }
    if (!mod) {
      const hint = cause instanceof SyntaxError && ESM_IN_CJS.test(cause.message)
        ? ' (an ES module needs "type": "module" in a package.json next to it, or the name score.mjs)'
        : '';
      throw new Error(describeLoadError(file, cause) + hint, { cause });
    }
  }
  const run = pick(mod, 'run');
  if (!run) {
    throw new Error(`${file} exports no run(input) function (expected \`export function run\`, \`module.exports = { init, run }\` or \`exports.run = …\`)`);
  }
  return { file, init: pick(mod, 'init') ?? (() => undefined), run };
}
