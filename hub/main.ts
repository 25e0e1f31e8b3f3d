/**
 * Composition root of the hub: wires config, broker, inbox, fleet state and HTTP once.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { formatHostPort, parseHostPort } from '../shared/address.js';
import { systemClock } from '../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { ShutdownStack } from '../shared/shutdown-stack.js';
import { parseSize } from '../shared/size.js';
import { edgemlVersion } from '../shared/version.js';
import { parseDuration } from '../shared/duration.js';
import { ensureAdminKey } from './auth/admin-key.js';
import { ensureHubSecret } from './auth/hub-secret.js';
import { defaultBaseImage } from './builds/base-images.js';
import { BuildLogs } from './builds/build-log.js';
import { dockerBuildSteps } from './builds/build-steps.js';
import { hubInstanceId, ImageBuilder } from './builds/image-builder.js';
import { markBuildProcesses } from './builds/leftovers.js';
import { startTrainers } from './training/start-trainers.js';
import { ApiKeyAuthority } from './auth/api-keys.js';
import { advertisedBroker, readableConfigFile, retentionDays, type HubConfig } from './config.js';
import { deviceBrokerAuth } from './broker/auth.js';
import { createBroker, type BrokerTls } from './broker/broker.js';
import { startInbox } from './broker/inbox.js';
import { LogRelay } from './logs/log-relay.js';
import { encodeMessage } from '../shared/protocol.js';
import { deviceTopic } from '../shared/topics.js';
import { Deployments } from './fleet/deployments.js';
import { DesiredStates } from './fleet/desired-states.js';
import { DeviceDirectory } from './fleet/device-directory.js';
import { ModelLocator } from './fleet/model-locator.js';
import { RolloutController } from './fleet/rollout-controller.js';
import { ModelUpdates } from './fleet/model-update.js';
import { gateMeter } from './fleet/rollout-gates-measure.js';
import { buildHttpServer } from './http/server.js';
import { certificateRequests } from './pki/certificate-requests.js';
import type { ServerKeyPair } from './pki/hub-certificate.js';
import { listenerCertificate, startPki } from './pki/start-pki.js';
import { CertificateIssuer } from './pki/issuer.js';
import type { HubFigures } from './http/prometheus.js';
import { ManifestRegistry } from './registry/manifest-registry.js';
import { ModelRegistry } from './registry/model-registry.js';
import { BlobStore } from './store/blob-store.js';
import { lockDataDir } from './store/data-dir-lock.js';
import { openLowdbStore } from './store/lowdb-store.js';
import { StoredProblems } from './store/problems.js';
import type { HubStore } from './store/store.js';
import { TelemetryArchive } from './telemetry/archive.js';
import { TelemetryIngest, type ServicesOf } from './telemetry/ingest.js';
import { ArchiveLabelledData } from './datasets/labelled-data.js';
import { DatasetRegistry } from './datasets/dataset-registry.js';
import { startRetraining } from './retraining/start-retraining.js';
import { startTelemetryJobs } from './telemetry/jobs.js';

export interface RunningHub {
  http: string;
  /** https://HOST:PORT or http://HOST:PORT */
  url: string;
  mqtt: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The admin key is shown once, on an interactive terminal only: a service manager would copy
 * stderr into its journal, and the key must not sit in a log. It is always in DATA/admin.key.
 */
async function announceAdminKey(result: Awaited<ReturnType<typeof ensureAdminKey>>, logger: Logger): Promise<void> {
  if (!result.created) return;
  logger.info({ file: result.file }, 'created the admin API key (file readable by this user only)');
  if (process.stderr.isTTY) {
    process.stderr.write(`\nadmin API key (shown once; also in ${result.file}):\n  ${result.key}\n\n`);
  }
}

/** What scoring and trainer images are built from. */
async function buildBase(config: Readonly<HubConfig>) {
  return {
    baseImages: {
      node: config.baseImageNode ?? defaultBaseImage(config.registry, 'node'),
      python: config.baseImagePython ?? defaultBaseImage(config.registry, 'python'),
    },
    extraCaFile: config.extraCa === undefined ? undefined : await readableConfigFile('--extra-ca', config.extraCa),
  };
}

async function startImageBuilder(config: Readonly<HubConfig>, dataDir: string, store: HubStore, blobs: BlobStore, logger: Logger) {
  const logs = await BuildLogs.open(join(dataDir, 'builds', 'logs'), logger);
  const instance = hubInstanceId(dataDir);
  markBuildProcesses(instance);
  const queue = new ImageBuilder({
    images: store.images,
    manifests: store.manifests,
    models: store.models,
    blobs,
    logs,
    clock: systemClock,
    logger,
    steps: dockerBuildSteps,
    options: {
      registry: config.registry,
      imagePrefix: config.imagePrefix,
      ...(await buildBase(config)),
      smokeTimeoutMs: parseDuration(config.smokeTimeout),
      workDir: join(dataDir, 'builds', 'work'),
      instance,
    },
  });
  await queue.start();
  return { queue, logs, stop: () => queue.stop() };
}

/** The telemetry archive in the user's storage directory, with its retention and compaction jobs. */
async function startTelemetry(config: Readonly<HubConfig>, dataDir: string, parts: ShutdownStack, servicesOf: ServicesOf, logger: Logger) {
  const dir = resolve(config.telemetryDir ?? join(dataDir, 'telemetry'));
  const archive = await TelemetryArchive.open(dir, { clock: systemClock, logger });
  parts.push(() => archive.close());
  const jobs = startTelemetryJobs({ archive, retentionDays: retentionDays(config), clock: systemClock, logger });
  parts.push(() => jobs.stop());
  logger.info({ dir, retention: config.telemetryRetention }, 'telemetry archive open');
  return { archive, ingest: new TelemetryIngest({ archive, servicesOf, clock: systemClock, retentionDays: retentionDays(config), logger }) };
}

export async function startHub(config: Readonly<HubConfig>, logger: Logger): Promise<RunningHub> {
  const startedAt = systemClock.now();
  const mqttListen = parseHostPort(config.mqtt);
  const httpListen = parseHostPort(config.http);
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const maxUploadBytes = parseSize(config.maxUpload);

  const parts = new ShutdownStack();
  try {
    // First of all: everything below assumes it is the only hub touching this directory.
    const lock = await lockDataDir(dataDir);
    parts.push(() => lock.release());
    const store = await openLowdbStore(join(dataDir, 'hub.json'));
    const blobs = await BlobStore.open(join(dataDir, 'blobs'));
    // Only now, before any upload can be in flight, is an unreferenced blob certainly garbage.
    const swept = await blobs.sweep(await store.referencedBlobs());
    if (swept.removed > 0) logger.info({ removed: swept.removed, bytes: swept.bytes }, 'removed unreferenced blobs');
    const authority = new ApiKeyAuthority(store.apiKeys, systemClock);
    await announceAdminKey(await ensureAdminKey(dataDir, store.apiKeys, authority), logger);
    const hubSecret = await ensureHubSecret(dataDir);
    const pki = await startPki(config, dataDir, store, parts, logger.child({ component: 'pki' }));
    const pkiParts = { dataDir, ca: pki.ca, parts, logger: logger.child({ component: 'pki' }) };
    // Bound late: the servers are made after their certificates.
    let renewHttps = (_pair: ServerKeyPair): void => undefined;
    let renewMqtts = (_pair: ServerKeyPair): void => undefined;
    const httpListener = await listenerCertificate(config, 'http', pkiParts, (pair) => renewHttps(pair));
    const mqttListener = await listenerCertificate(config, 'mqtt', pkiParts, (pair) => renewMqtts(pair));
    const https = httpListener.pair;
    let mqttPair = mqttListener.pair;
    const hubNames = [...new Set([...httpListener.names, ...mqttListener.names])];
    // Client certificates from the hub's CA, checked against its current CRL.
    const brokerTls = (): BrokerTls | undefined => mqttPair && { ...mqttPair, clientAuth: { ca: pki.ca.certificatePem, crl: pki.revocations.pem() } };

    const builder = await startImageBuilder(config, dataDir, store, blobs, logger.child({ component: 'builder' }));
    parts.push(() => builder.stop());
    // After the image builder's start, which kills what a crash left building (trainer builds too).
    const trainers = await startTrainers(store, blobs, systemClock, logger.child({ component: 'trainers' }), {
      dataDir,
      registry: config.registry,
      imagePrefix: config.imagePrefix,
      ...(await buildBase(config)),
    });
    parts.push(() => trainers.stop());

    // Stored records that no longer validate are reported and skipped: they never stop the hub.
    const problems = new StoredProblems(logger.child({ component: 'store' }));
    const devices = await DeviceDirectory.load(store.devices, systemClock, logger.child({ component: 'devices' }), problems);
    parts.push(() => devices.close());
    // Before the broker, so that at shutdown the broker stops taking batches before the archive closes.
    // What a device may send figures about: what it should run, and what it says it runs.
    const servicesOf: ServicesOf = (id) => new Set([...(desired.get(id)?.services.map((s) => s.name) ?? []), ...devices.reportedServices(id)]);
    const telemetry = await startTelemetry(config, dataDir, parts, servicesOf, logger.child({ component: 'telemetry' }));
    // Captures joined with their labels: what retraining trains on and what the metric gate measures.
    const labelled = new ArchiveLabelledData(telemetry.archive, logger.child({ component: 'datasets' }));
    // Not listening yet: devices are admitted once every handler below is wired (broker.open()).
    const broker = await createBroker({
      listen: mqttListen,
      auth: deviceBrokerAuth(devices, { clientDevice: (serial) => pki.issued.clientDevice(serial, systemClock.now()) }),
      tls: brokerTls(),
      limits: { maxPacketBytes: parseSize(config.mqttMaxPacket), maxConnectingPerAddress: config.mqttMaxConnecting },
      logger: logger.child({ component: 'broker' }),
    });
    parts.push(() => broker.close());
    const refreshBrokerTls = () => {
      const tls = brokerTls();
      if (tls) broker.setTls(tls);
    };
    renewMqtts = (pair) => {
      mqttPair = pair;
      refreshBrokerTls();
    };
    pki.revocations.onChange(refreshBrokerTls);
    // On-demand device logs (hub/logs/log-relay.ts): commands out on `cmd`, lines back on `logs`.
    const logRelay = new LogRelay({
      sendCommand: (id, cmd) => broker.publish(deviceTopic(id, 'cmd'), encodeMessage('cmd', cmd), { qos: 1, retain: false }),
      isOnline: (id) => devices.isActive(id) && devices.get(id).status === 'online',
      clock: systemClock,
      logger: logger.child({ component: 'device-logs' }),
    });
    parts.push(async () => logRelay.close());
    logger.info({ epoch: await store.desired.renewEpoch() }, 'a new epoch for desired states');
    const desired = await DesiredStates.load({ repo: store.desired, deployments: store.deployments, devices, broker, problems, logger: logger.child({ component: 'desired' }) });
    // The broker starts without retained messages: devices get their stored state back, and
    // anything a crash left uncomputed (a device enrolled just before it) is computed now.
    devices.readDesiredGenerationFrom((id) => desired.get(id)?.generation ?? null);
    await desired.republish();
    await desired.sync();
    // Active rollouts resume where the store says they were.
    const rollouts = new RolloutController({
      rollouts: store.rollouts,
      devices,
      desired,
      clock: systemClock,
      logger: logger.child({ component: 'rollouts' }),
      measure: gateMeter({ archive: telemetry.archive, labelled }),
    });
    rollouts.start();
    parts.push(() => rollouts.close());
    const deployments = new Deployments({
      deployments: store.deployments,
      images: store.images,
      devices,
      desired,
      rollouts,
      clock: systemClock,
      logger: logger.child({ component: 'deployments' }),
    });
    // Replaced service keys whose grace ended while the hub was down go now; the others at their end.
    await deployments.start();
    // Model updates a stop left building or rolling out carry on (the builder queued their builds again).
    const modelUpdates = new ModelUpdates({
      updates: store.modelUpdates,
      deployments,
      images: store.images,
      manifests: store.manifests,
      models: store.models,
      registry: new ManifestRegistry({ manifests: store.manifests, models: store.models, blobs, clock: systemClock }),
      builder: builder.queue,
      blobs,
      clock: systemClock,
      logger: logger.child({ component: 'model-updates' }),
    });
    await modelUpdates.resume();
    parts.push(() => modelUpdates.stop());
    const datasetRegistry = new DatasetRegistry({ datasets: store.datasets, blobs, clock: systemClock, maxUploadBytes });
    // Runs a stop left running end failed now; queued ones and the triggers carry on.
    const retraining = await startRetraining({
      store,
      blobs,
      clock: systemClock,
      labelled,
      datasets: datasetRegistry,
      trainers: trainers.registry,
      updates: modelUpdates,
      dataDir,
      instance: hubInstanceId(dataDir),
      limits: { maxUploadBytes, maxArchiveFiles: config.maxArchiveFiles },
      logger: logger.child({ component: 'retraining' }),
    });
    parts.push(() => retraining.close());
    devices.onChange((id, change) => {
      // Only a connection made with the replaced token goes; the agent comes back with its current one.
      if (change === 'token-expired') return void broker.dropIfUnadmitted(id);
      deployments.deviceChanged(id).catch((err: unknown) => logger.error({ err, deviceId: id }, 'cannot update the desired state of a changed device'));
      if (change !== 'revoked') return;
      broker.disconnect(id);
      pki.revocations.rebuild().catch((err: unknown) => logger.error({ err, deviceId: id }, "cannot list a revoked device's certificates in the revocation list"));
      desired.forget(id).catch((err: unknown) => logger.error({ err, deviceId: id }, "cannot clear a revoked device's retained desired state"));
    });
    const issuer = new CertificateIssuer({
      ca: pki.ca,
      devices: store.devices,
      isActive: (id) => devices.isActive(id),
      clock: systemClock,
      lifetimeMs: parseDuration(config.deviceCertLifetime),
      issued: pki.issued,
      hubNames: () => hubNames,
    });
    const csr = certificateRequests({ issuer, broker, ca: pki.ca, logger: logger.child({ component: 'certificates' }) });
    const inbox = await startInbox(
      broker,
      {
        status: (deviceId, status) => {
          devices.applyStatus(deviceId, status);
          if (status.state === 'offline') logRelay.deviceOffline(deviceId);
          logger.info({ deviceId, state: status.state, reason: status.state === 'offline' ? status.reason : undefined }, 'device status');
        },
        reported: (deviceId, reported) => {
          devices.applyReported(deviceId, reported);
          logger.debug({ deviceId, observedGeneration: reported.observedGeneration, phase: reported.phase }, 'device reported');
        },
        telemetry: (deviceId, batch) => telemetry.ingest.accept(deviceId, batch),
        csr: (deviceId, request) => csr.handle(deviceId, request),
        logs: (deviceId, message) => logRelay.message(deviceId, message),
        'cmd/ack': (deviceId, ack) => logRelay.ack(deviceId, ack),
      },
      logger.child({ component: 'inbox' }),
      { seen: (deviceId) => devices.seen(deviceId) },
    );
    // A device without a last will, or whose will is late, is not left `online` by a connection gone.
    broker.onConnectionClosed((deviceId) => {
      devices.connectionClosed(deviceId);
      logRelay.deviceOffline(deviceId);
    });
    await broker.open();

    const version = edgemlVersion();
    const hubFigures = (): HubFigures => {
      const messages = inbox.stats();
      const batches = telemetry.archive.stats();
      return {
        version,
        uptimeSeconds: (systemClock.now() - startedAt) / 1000,
        devicesEnrolled: devices.list().filter((d) => d.status !== 'revoked').length,
        devicesOnline: devices.onlineCount(),
        mqttConnectedClients: broker.connectedClients(),
        messagesReceived: messages.received,
        messagesInvalidByChannel: messages.invalidByChannel,
        messagesInvalidByDevice: messages.invalidByDevice,
        batchesStored: batches.stored,
        batchesDuplicate: batches.duplicates,
        batchesInvalid: messages.invalidByChannel.telemetry,
        customDropped: inbox.customDropped(),
        outboxDropped: telemetry.ingest.fleet.outboxDropped(),
        services: telemetry.ingest.fleet.services(),
        // Only what the hub asks each device to run: a deleted or made-up service is no series.
        serviceReplicas: devices.serviceReplicas().filter((g) => desired.wants(g.device, g.service)),
      };
    };
    const app = await buildHttpServer({
      logger,
      https,
      devices,
      brokerUrl: () => advertisedBroker(config, parseHostPort(broker.address), mqttPair !== undefined),
      store,
      blobs,
      authority,
      models: new ModelRegistry({ models: store.models, blobs, clock: systemClock, limits: { maxUploadBytes, maxArchiveFiles: config.maxArchiveFiles } }),
      manifests: new ManifestRegistry({ manifests: store.manifests, models: store.models, blobs, clock: systemClock }),
      builder: builder.queue,
      deployments,
      modelUpdates,
      rollouts,
      locator: new ModelLocator({ devices, images: store.images, models: store.models, deployments: store.deployments }),
      buildLogs: builder.logs,
      maxUploadBytes,
      uploadIdleTimeoutMs: parseDuration(config.uploadIdleTimeout),
      hubSecret,
      deviceLogs: { relay: logRelay, devices, servicesOf, clock: systemClock },
      telemetry: {
        archive: telemetry.archive,
        devices,
        invalidByDevice: () => inbox.stats().invalidByDevice,
        clock: systemClock,
        serviceDeployed: async (name) => (await store.deployments.get(name)) !== undefined,
      },
      datasets: {
        labelled,
        registry: datasetRegistry,
        datasets: store.datasets,
        blobs,
        maxUploadBytes,
        uploadIdleTimeoutMs: parseDuration(config.uploadIdleTimeout),
        clock: systemClock,
      },
      trainers: { registry: trainers.registry, trainers: store.trainers, logs: trainers.logs },
      retraining,
      hubFigures,
      problems,
      pki: {
        ca: pki.summary,
        crl: () => pki.revocations.pem(),
        certificatesOf: async (id) => {
          const record = await store.devices.get(id);
          return record && (record.certificates ?? []);
        },
        now: () => systemClock.now(),
      },
      health: {
        version,
        devicesOnline: () => devices.onlineCount(),
        problems: () => problems.count(),
        mqtt: () => {
          const s = inbox.stats();
          return { connectedClients: broker.connectedClients(), received: s.received, invalid: s.invalid };
        },
      },
    });
    parts.push(() => app.close());
    renewHttps = (pair) => (app.server as unknown as TlsServer).setSecureContext(pair);
    // Runs before app.close (the stack unwinds newest first): log followers end and no build starts
    // while the hub is stopping. (The earlier push covers a start that fails before this point.)
    parts.push(() => builder.stop());
    parts.push(() => trainers.stop());
    try {
      await app.listen({ host: httpListen.host, port: httpListen.port });
    } catch (err) {
      throw new EdgemlError(ErrorCodes.HUB_LISTEN_FAILED, `http server cannot listen on ${config.http}: ${(err as Error).message}`, { cause: err });
    }
    const bound = app.server.address() as AddressInfo;
    const http = formatHostPort({ host: bound.address, port: bound.port });
    const url = `${https ? 'https' : 'http'}://${http}`;
    logger.info({ http, url, tls: https !== undefined, mqtt: broker.address, mqttTls: mqttPair !== undefined, data: dataDir, version }, 'hub ready');

    return {
      http,
      url,
      mqtt: broker.address,
      dataDir,
      close: async () => {
        await parts.stopAll();
        logger.info('hub stopped');
      },
    };
  } catch (err) {
    await parts.stopAll();
    throw err;
  }
}
