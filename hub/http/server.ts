/**
 * The hub's HTTP server: fastify with TypeBox route schemas, which also produce the OpenAPI
 * document at /openapi.json and Swagger UI at /docs.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { ErrorObject } from 'ajv';
import type { Logger } from '../../shared/logger.js';
import type { Problem } from '../../shared/api/problems.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { tooDeepAt } from '../../shared/json-depth.js';
import { describeAjvError, makeAjv } from '../../shared/schema.js';
import type { ApiKeyAuthority } from '../auth/api-keys.js';
import type { BuildLogs } from '../builds/build-log.js';
import type { ImageBuilder } from '../builds/image-builder.js';
import type { Deployments } from '../fleet/deployments.js';
import type { ModelUpdates } from '../fleet/model-update.js';
import type { RolloutController } from '../fleet/rollout-controller.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import type { ModelLocator } from '../fleet/model-locator.js';
import type { ServerKeyPair } from '../pki/hub-certificate.js';
import type { ManifestRegistry } from '../registry/manifest-registry.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { BlobStore } from '../store/blob-store.js';
import type { HubStore } from '../store/store.js';
import type { CaSummary } from '../pki/ca.js';
import type { IssuedCertificate } from '../store/store.js';
import { apiKeyRoutes } from './apikeys.js';
import { caPublicRoutes, deviceCertificateRoutes } from './ca.js';
import { installApiKeyAuth } from './auth.js';
import { deploymentRoutes } from './deployments.js';
import { modelUpdateRoutes } from './model-updates.js';
import { rolloutRoutes } from './rollouts.js';
import { deviceRoutes } from './devices.js';
import { deviceLogRoutes, type DeviceLogRoutesOptions } from './device-logs.js';
import { answerClientError, answerFrameworkError, installErrorHandler } from './errors.js';
import { healthRoutes, type HealthSource } from './health.js';
import { portalRoutes, portalRoot } from './portal.js';
import { problemRoutes } from './problems.js';
import { installIdempotency } from './idempotency.js';
import { imageRoutes } from './images.js';
import { manifestRoutes } from './manifests.js';
import { modelRoutes } from './models.js';
import { whereRoutes } from './where.js';
import { lineageRoutes } from './lineage.js';
import { telemetryRoutes, type TelemetryRoutesOptions } from './telemetry.js';
import { datasetRoutes, type DatasetRoutesOptions } from './datasets.js';
import { trainerRoutes, type TrainerRoutesOptions } from './trainers.js';
import { retrainingRoutes } from './retraining.js';
import type { Retraining } from '../retraining/retraining.js';
import { prometheusRoutes, type HubFigures } from './prometheus.js';
import { openApiOptions } from './openapi.js';

export interface HttpDeps {
  /** Serve HTTPS with this certificate (a running server takes new ones with `(app.server as tls.Server).setSecureContext`); absent: plain HTTP. */
  https?: ServerKeyPair | undefined;
  logger: Logger;
  health: HealthSource;
  /** Stored records skipped because they no longer validate. */
  problems: { list(): Problem[] };
  devices: DeviceDirectory;
  /** The broker URL devices are told at enrollment. */
  brokerUrl: () => string;
  store: HubStore;
  blobs: BlobStore;
  authority: ApiKeyAuthority;
  models: ModelRegistry;
  manifests: ManifestRegistry;
  builder: ImageBuilder;
  deployments: Deployments;
  modelUpdates: ModelUpdates;
  rollouts: RolloutController;
  locator: ModelLocator;
  buildLogs: BuildLogs;
  maxUploadBytes: number;
  /** A model upload with no byte for this long is ended. */
  uploadIdleTimeoutMs: number;
  telemetry: TelemetryRoutesOptions;
  deviceLogs: DeviceLogRoutesOptions;
  datasets: DatasetRoutesOptions;
  trainers: TrainerRoutesOptions;
  retraining: Retraining;
  /** Derives the secrets of creates made under an Idempotency-Key (hub-secret.ts). */
  hubSecret: Buffer;
  /** What `/metrics` shows, read at each scrape. */
  hubFigures: () => HubFigures;
  /** The hub's CA, its current revocation list, and what it signed for each device. */
  pki: { ca: CaSummary; crl: () => string; certificatesOf: (id: string) => Promise<IssuedCertificate[] | undefined>; now: () => number };
}

/** Far deeper than any request of this API (a manifest's schema document is bounded at 64 inside it). */
export const MAX_BODY_DEPTH = 128;

/** Per-request lines at debug: probes and CLI polling would drown an info log. */
class DebugRequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: request.url }, 'request');
  }
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    request.log.debug({ statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime), err: error?.message }, 'response');
  }
}

/** `body.score.filename: must look like "model.onnx"` rather than ajv's terse default. */
function formatSchemaErrors(errors: ErrorObject[], dataVar: string): Error {
  const first = errors[0];
  return new Error(first ? describeAjvError({ ...first, instancePath: `/${dataVar}${first.instancePath}` }) : `${dataVar}: is invalid`);
}

/**
 * The server every route runs in: how requests are parsed, validated and refused, before any route.
 * Apart from the routes so that tests can hold it to its error contract with routes of their own.
 */
export function createHubFastify(logger: Logger, https?: ServerKeyPair): FastifyInstance {
  const app = Fastify({
    // HTTPS only: plain HTTP to this port fails its handshake (no redirect to follow with a key in it).
    ...(https ? { https: { key: https.key, cert: https.cert } } : {}),
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new DebugRequestLog(),
    // A large model over a slow link takes a while; Node's default would cut it after 5 minutes.
    requestTimeout: 60 * 60 * 1000,
    schemaErrorFormatter: formatSchemaErrors,
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
  }) as unknown as FastifyInstance;
  // JSON is the API's only body (uploads register their own types): fastify's default text/plain
  // parser would hand a route a string, refused as a 400 "must be object" instead of a 415.
  app.removeContentTypeParser('text/plain');
  // fastify's own JSON parser (with its prototype-poisoning checks), then a bound on nesting: a body
  // thousands of levels deep parses, but every later step that walks it would overflow the stack.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
    parseJson(req, text as string, (err, body) => {
      if (err) return done(err, undefined);
      const at = tooDeepAt(body, MAX_BODY_DEPTH, 'body');
      if (at === null) return done(null, body);
      done(new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `${at}: is nested more than ${MAX_BODY_DEPTH} levels deep`, { httpStatus: 400 }), undefined);
    });
  });
  // Unknown fields are an error, never silently dropped (fastify's default). Query strings and
  // paths are text, so they are coerced ("3" → 3, one `tag=` → ["…"]); JSON bodies are taken as
  // sent, so `{"version": "1"}` is an error rather than a guess.
  const textParts = makeAjv({ useDefaults: true, coerceTypes: 'array' });
  const jsonBodies = makeAjv({ useDefaults: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? jsonBodies : textParts).compile(schema));
  installErrorHandler(app);
  return app;
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = createHubFastify(deps.logger, deps.https);
  await app.register(fastifySwagger, openApiOptions(deps.health.version));
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(portalRoutes, { root: portalRoot() });
  // Public, so before the API key hook (which refuses an /api/v1 route without a scope).
  await app.register(caPublicRoutes, { ca: deps.pki.ca, crl: deps.pki.crl });
  installApiKeyAuth(app, deps.authority);
  installIdempotency(app, deps.hubSecret);
  await app.register(healthRoutes, { source: deps.health });
  await app.register(problemRoutes, { problems: deps.problems });
  await app.register(deviceRoutes, { devices: deps.devices, broker: deps.brokerUrl });
  await app.register(deviceLogRoutes, deps.deviceLogs);
  await app.register(deviceCertificateRoutes, { certificatesOf: deps.pki.certificatesOf, now: deps.pki.now });
  await app.register(apiKeyRoutes, { authority: deps.authority });
  await app.register(modelRoutes, { registry: deps.models, models: deps.store.models, blobs: deps.blobs, maxUploadBytes: deps.maxUploadBytes, uploadIdleTimeoutMs: deps.uploadIdleTimeoutMs });
  await app.register(manifestRoutes, { registry: deps.manifests, manifests: deps.store.manifests, blobs: deps.blobs });
  await app.register(deploymentRoutes, { deployments: deps.deployments });
  await app.register(modelUpdateRoutes, { modelUpdates: deps.modelUpdates });
  await app.register(rolloutRoutes, { rollouts: deps.rollouts });
  await app.register(imageRoutes, { builder: deps.builder, images: deps.store.images, logs: deps.buildLogs });
  await app.register(whereRoutes, { locator: deps.locator });
  await app.register(lineageRoutes, { models: deps.store.models, manifests: deps.store.manifests, images: deps.store.images, locator: deps.locator });
  await app.register(telemetryRoutes, deps.telemetry);
  await app.register(datasetRoutes, deps.datasets);
  await app.register(trainerRoutes, deps.trainers);
  await app.register(retrainingRoutes, { retraining: deps.retraining });
  await app.register(prometheusRoutes, { figures: deps.hubFigures, rolloutsByPhase: () => deps.rollouts.countByPhase() });
  return app;
}
