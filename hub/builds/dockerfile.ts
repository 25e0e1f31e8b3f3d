/**
 * The Dockerfile of a scoring image, rendered from a manifest. Layers go from what changes least
 * to what changes most: the runtime server, then the dependencies, then the scoring script and
 * schema, then the model files — so a new model version rebuilds and pushes only the last layers.
 */
import type { ManifestVersion, Runtime } from '../../shared/api/manifests.js';

/** Where things live in the build context (and, below /opt/edgeml, in the image). */
export const CONTEXT = {
  runtime: 'runtime',
  /** Node: `deps/<TARGETARCH>/node_modules`, installed for each platform. Python: `deps/requirements.txt`. */
  deps: 'deps',
  app: 'app',
  models: 'models',
} as const;

export const IMAGE_PATHS = {
  runtime: '/opt/edgeml/runtime',
  app: '/opt/edgeml/app',
  models: '/opt/edgeml/models',
  pythonLib: '/opt/edgeml/pylib',
} as const;

/** The build secret that carries an extra CA bundle for dependency installs; never in a layer. */
export const EXTRA_CA_SECRET = 'extra-ca';

export interface ImageRecipe {
  runtime: Runtime;
  baseImage: string;
  env: Record<string, string>;
  labels: Record<string, string>;
}

/**
 * A value inside double quotes in a Dockerfile: `\`, `"` and `$` are escaped. Newlines cannot be
 * written at all, which the manifest schema rules out.
 */
export function dockerfileString(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a Dockerfile value cannot hold a line break');
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

export function imageLabels(manifest: ManifestVersion): Record<string, string> {
  return {
    'org.opencontainers.image.title': manifest.name,
    'org.opencontainers.image.version': String(manifest.version),
    'org.opencontainers.image.description': manifest.description || `edgeml scoring image for manifest ${manifest.name}:${manifest.version}`,
    'io.edgeml.manifest': `${manifest.name}:${manifest.version}`,
    'io.edgeml.manifest.digest': manifest.digest,
    'io.edgeml.runtime': manifest.runtime,
    'io.edgeml.models': JSON.stringify(manifest.models),
  };
}

/**
 * The layers that put a recipe's dependencies into `appDir`: node_modules installed on the build
 * host for each target platform (native addons differ per arch), or a pip install inside the build.
 * Shared by scoring images and trainer images.
 */
export function depsLayers(runtime: Runtime, appDir: string): string[] {
  if (runtime === 'node') return [`COPY ${CONTEXT.deps}/\${TARGETARCH}/ ${appDir}/`];
  return [
    `COPY ${CONTEXT.deps}/requirements.txt ${appDir}/requirements.txt`,
    // pip needs an index: the extra CA (a proxy's, a company's) is mounted for this step only.
    `RUN --mount=type=secret,id=${EXTRA_CA_SECRET},required=false \\`,
    `    if [ -s ${appDir}/requirements.txt ]; then \\`,
    // The extra CA is added to the system bundle (PIP_CERT alone would replace it); the combined
    // file is removed in the same step, so it is in no layer.
    `      if [ -s /run/secrets/${EXTRA_CA_SECRET} ]; then cat /etc/ssl/certs/ca-certificates.crt /run/secrets/${EXTRA_CA_SECRET} > /tmp/edgeml-ca.pem; export PIP_CERT=/tmp/edgeml-ca.pem; fi; \\`,
    `      python3 -m pip install --no-cache-dir --disable-pip-version-check --target ${IMAGE_PATHS.pythonLib} -r ${appDir}/requirements.txt; \\`,
    `      rm -f /tmp/edgeml-ca.pem; \\`,
    `    fi`,
  ];
}

/** ENV lines in a stable order. */
export function envLines(vars: Record<string, string>): string[] {
  return Object.entries(vars)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `ENV ${k}=${dockerfileString(v)}`);
}

/** Labels are descriptive: a multi-line value is folded onto one line. */
export function labelLines(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `LABEL ${k}=${dockerfileString(v.replace(/\s*[\r\n]+\s*/g, ' '))}`);
}

/** What every runtime needs in the environment: Python finds the pip-installed dependencies. */
export function runtimeEnv(runtime: Runtime): Record<string, string> {
  return runtime === 'node' ? { NODE_ENV: 'production' } : { PYTHONPATH: IMAGE_PATHS.pythonLib, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' };
}

export function renderDockerfile(recipe: ImageRecipe): string {
  const command = recipe.runtime === 'node' ? ['node', `${IMAGE_PATHS.runtime}/server.mjs`] : ['python3', `${IMAGE_PATHS.runtime}/server.py`];
  const baseEnv: Record<string, string> = {
    PORT: '8080',
    HOST: '127.0.0.1',
    EDGEML_APP_DIR: IMAGE_PATHS.app,
    EDGEML_MODEL_DIR: IMAGE_PATHS.models,
    ...runtimeEnv(recipe.runtime),
  };
  return [
    `ARG BASE_IMAGE=${recipe.baseImage}`,
    'FROM ${BASE_IMAGE}',
    'ARG TARGETARCH',
    ...envLines(baseEnv),
    `COPY ${CONTEXT.runtime}/ ${IMAGE_PATHS.runtime}/`,
    ...depsLayers(recipe.runtime, IMAGE_PATHS.app),
    `COPY ${CONTEXT.app}/ ${IMAGE_PATHS.app}/`,
    `COPY ${CONTEXT.models}/ ${IMAGE_PATHS.models}/`,
    ...envLines(recipe.env),
    ...labelLines(recipe.labels),
    // Exec form: the server is PID 1 and gets SIGTERM to drain.
    `CMD ${JSON.stringify(command)}`,
    // An unprivileged user: nothing in the image needs root at run time.
    'USER 65534:65534',
    '',
  ].join('\n');
}
