/**
 * `serve --runtime node|python`: the runtime server of images/ run on this machine from the user's
 * files, laid out in a temporary directory as in an image, restarted when they change.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import { edgemlPackageRoot } from '../../shared/version.js';
import { fileError, inputError } from '../args.js';
import { checkScoreFile, layoutApp, layoutModel, type ModelSource } from './layout.js';
import { HOST, type ServeTarget } from './session.js';

export interface FilesOptions {
  runtime: Runtime;
  score: string;
  schema: string;
  models: readonly ModelSource[];
  /** The Python interpreter for the python runtime. */
  python: string;
  /** The manifest's environment variables (the image's ENV lines). */
  env?: Record<string, string>;
  /** Off for a manifest's downloaded files. */
  watch: boolean;
}

/** The schema document, checked as the hub checks a manifest's. */
async function readSchema(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fileError(path, err, '--schema ');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw inputError(`--schema ${path}: not JSON: ${(err as Error).message}`, err);
  }
  const { checkScoringSchema } = await import('../../hub/registry/scoring-schema.js');
  try {
    checkScoringSchema(doc);
  } catch (err) {
    throw inputError(`--schema ${path}: ${(err as Error).message}`, err);
  }
  return doc;
}

/** The runtime's own settings: the only EDGEML_* variables of this shell the runtime is given. */
const RUNTIME_ENV = ['EDGEML_MAX_BODY_BYTES', 'EDGEML_APP_NAME', 'EDGEML_APP_VERSION'];

/** This shell's environment without edgeml's own (the hub URL, EDGEML_API_KEY): the scoring code has no business with them. */
export function userEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('EDGEML_') || RUNTIME_ENV.includes(name)));
}

function server(runtime: Runtime): string {
  return join(edgemlPackageRoot(), 'images', `runtime-${runtime}`, runtime === 'node' ? 'server.mjs' : 'server.py');
}

export async function filesTarget(opts: FilesOptions): Promise<ServeTarget> {
  checkScoreFile(opts.runtime, opts.score);
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-serve-'));
  const appDir = join(dir, 'app');
  const modelDir = join(dir, 'models');
  return {
    mode: 'files',
    async prepare() {
      const schema = await readSchema(opts.schema);
      await layoutApp(appDir, { runtime: opts.runtime, score: opts.score, schema });
      for (const model of opts.models) await layoutModel(modelDir, model);
    },
    command(port) {
      return {
        command: opts.runtime === 'node' ? process.execPath : opts.python,
        args: [server(opts.runtime)],
        env: {
          ...userEnv(process.env),
          ...opts.env,
          HOST,
          PORT: String(port),
          EDGEML_APP_DIR: appDir,
          EDGEML_MODEL_DIR: modelDir,
          // A reload should not wait for long requests; Ctrl-C is a person at the keyboard.
          EDGEML_DRAIN_SECONDS: '2',
          PYTHONDONTWRITEBYTECODE: '1',
        },
        label: `the ${opts.runtime} runtime (${opts.runtime === 'node' ? 'node' : opts.python})`,
      };
    },
    watch: opts.watch ? [opts.score, opts.schema, ...opts.models.map((m) => m.path)] : [],
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
