/**
 * Composition root of the agent: wires config, Docker, facts, target cache, certificates, gateway,
 * reconciler, autoscaler, telemetry and the hub link once.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { parseHostPort } from '../shared/address.js';
import { systemClock } from '../shared/clock.js';
import { parseDuration } from '../shared/duration.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { parseSize } from '../shared/size.js';
import type { Logger } from '../shared/logger.js';
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION } from '../shared/protocol.js';
import { edgemlVersion } from '../shared/version.js';
import type { AgentConfig } from './config.js';
import { runCommand } from './commands.js';
import { StartedParts } from './started-parts.js';
import { connectHubLink, type HubLink } from './link/hub-link.js';
import { startGateway, type ServingCertificate } from './gateway/server.js';
import { deviceCertificates, type DeviceCertificates } from './pki/device-certificates.js';
import type { TlsMaterial } from './pki/material.js';
import { gatewayNames } from './pki/names.js';
import { loopbackPorts } from './reconcile/free-port.js';
import { httpHealthProbe } from './reconcile/health-probe.js';
import { PromotedContainers, recordFile } from './reconcile/promoted-containers.js';
import { Reconciler } from './reconcile/reconciler.js';
import { RouteTable } from './reconcile/routes.js';
import { TargetCache } from './reconcile/target-cache.js';
import { dockerRuntime } from './runtime/docker.js';
import { Autoscaler } from './scale/autoscaler.js';
import { assumedMemory, hostMemory, MemoryGuard } from './scale/memory-guard.js';
import { batchIds } from './telemetry/batch-ids.js';
import { CaptureBuffer } from './telemetry/capture-buffer.js';
import { containerMetrics } from './telemetry/container-metrics.js';
import { deviceSampler, systemProbes } from './telemetry/device-metrics.js';
import { collectFacts, nativePlatform } from './telemetry/facts.js';
import { MetricsCollector } from './telemetry/metrics-collector.js';
import { Outbox, type Batch } from './telemetry/outbox.js';
import { FeedbackQueue } from './feedback/feedback-queue.js';
import { InputSchemas } from './feedback/input-schema.js';
import { RequestIndex } from './feedback/request-index.js';
import { feedbackHandler } from './gateway/feedback.js';
import { TelemetrySender } from './telemetry/telemetry-sender.js';
import { CustomMetricsReader, loopbackMetricsFetch, routeReplicas } from './telemetry/custom-metrics-reader.js';
import { AgentLogRing, teeLogger } from './logs/agent-log-ring.js';
import { LogSessions } from './logs/log-sessions.js';
import { LogShipper } from './logs/log-shipper.js';

/** DATA/tls: the device's keys and certificates, and the hub's CA. */
const TLS_DIR = 'tls';

const serving = (m: TlsMaterial): ServingCertificate => ({ key: m.key, cert: m.certificate });

export interface RunningAgent {
  close(): Promise<void>;
}

async function readHubCa(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: --hub-ca ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

export interface StartAgentOptions {
  /** The token came with --token, which every user of the machine sees in `ps`. */
  tokenOnCommandLine?: boolean;
}

export async function startAgent(config: Readonly<AgentConfig>, logger: Logger, options: StartAgentOptions = {}): Promise<RunningAgent> {
  // First: `edgeml logs --agent` shows everything from the start.
  const agentLog = new AgentLogRing();
  teeLogger(logger, agentLog);
  if (options.tokenOnCommandLine) logger.warn('the device token was given with --token, which shows in ps: prefer --token-file or EDGEML_AGENT_TOKEN');
  const started = new StartedParts();
  try {
    return await startParts(config, logger, started, agentLog);
  } catch (err) {
    await started.closeAll(logger);
    throw err;
  }
}

async function startParts(config: Readonly<AgentConfig>, logger: Logger, started: StartedParts, agentLog: AgentLogRing): Promise<RunningAgent> {
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const startedAt = systemClock.now();
  const runtime = dockerRuntime({ pullStallMs: parseDuration(config.pullStallTimeout) });
  const platform = config.platform ?? nativePlatform();
  const agentVersion = edgemlVersion();

  const target = new TargetCache(dataDir, logger.child({ component: 'target' }));
  const cached = await target.load();
  if (cached) logger.info({ generation: cached.generation }, 'loaded cached desired state');

  const promoted = await PromotedContainers.load(recordFile(dataDir), logger);

  const telemetryLogger = logger.child({ component: 'telemetry' });
  const outbox = started.add(await Outbox.open(join(dataDir, 'telemetry', 'outbox'), {
    limits: {
      metrics: parseSize(config.telemetryQueue),
      capture: parseSize(config.captureQueue),
      ...(config.feedbackQuota === undefined ? {} : { feedback: parseSize(config.feedbackQuota) }),
      logs: parseSize(config.logQueue),
    },
    // Anything larger the broker would refuse: better refused at append, where the caller can split it.
    maxBatchBytes: MAX_MESSAGE_BYTES,
    logger: telemetryLogger,
  }));
  // Ready before the gateway and the link, so anything may queue batches from the start.
  const sender = started.add(new TelemetrySender({ outbox, clock: systemClock, logger: telemetryLogger }));
  /** The one way into the outbox (metrics and captures): it wakes the sender. */
  const appendTelemetry = async (batch: Batch): Promise<void> => {
    await outbox.append(batch);
    sender.wake();
  };
  const listen = parseHostPort(config.gateway);
  const captures = started.add(new CaptureBuffer({ append: appendTelemetry, nextId: batchIds('c'), clock: systemClock, logger: telemetryLogger }));
  // Request ids of captured samples, so labels sent later by request id can be checked (kept 7 days, across restarts).
  const requests = started.add(await RequestIndex.open(join(dataDir, 'feedback', 'requests'), { clock: systemClock, logger: logger.child({ component: 'feedback' }) }));
  const labels = new FeedbackQueue({ append: appendTelemetry, nextId: batchIds('f'), logger: telemetryLogger });
  const certificates: DeviceCertificates = started.add(await deviceCertificates({
    deviceId: config.deviceId,
    dir: join(dataDir, TLS_DIR),
    gateway:
      config.gatewayTls === 'auto'
        ? {
            names: () => gatewayNames({ host: listen.host, advertiseUrl: config.advertiseUrl, interfaces: networkInterfaces() }),
            onInstalled: (m) => gateway.setCertificate(serving(m)),
          }
        : undefined,
    login: {
      auth: config.auth,
      token: config.token,
      tokenFile: config.tokenFile,
      hubCa: config.hubCa === undefined ? undefined : await readHubCa(config.hubCa),
      readFile: (path) => readFile(path, 'utf8'),
    },
    link: () => link,
    clock: systemClock,
    logger: logger.child({ component: 'pki' }),
  }));

  const routes = new RouteTable();
  const gatewayLogger = logger.child({ component: 'gateway' });
  const gateway = started.add(await startGateway({
    listen,
    ...(config.gatewayTls === 'auto' ? { tls: { certificate: certificates.storedGateway && serving(certificates.storedGateway) } } : {}),
    routes,
    capture: requests.indexing(captures),
    feedback: feedbackHandler({
      index: requests,
      // A label for a captured request goes to the outbox after the capture it labels, not up to
      // 5 s before it: the hub can join them as soon as it counts the label (retraining triggers).
      queue: {
        add: async (item) => {
          if (item.input === undefined) await captures.flush();
          return labels.add(item);
        },
      },
      schemas: new InputSchemas(),
      clock: systemClock,
    }),
    desired: () => target.get()?.services.map((s) => s.name) ?? [],
    // A gateway bound to 0.0.0.0 cannot say how clients reach it.
    advertiseUrl: config.advertiseUrl,
    clock: systemClock,
    logger: gatewayLogger,
    health: httpHealthProbe,
    // Out of the rotation already; the reconciler drops it from the route and starts a replacement.
    onReplicaDown: (service, replica, reason) => {
      gatewayLogger.warn({ service, container: replica.container, port: replica.port, reason }, 'a replica failed; replacing it');
      reconciler.replicaFailed(replica.container);
    },
  }));

  const probes = systemProbes(dataDir);
  const autoscaler = new Autoscaler({
    load: gateway,
    desired: () => target.get()?.services ?? [],
    guard: new MemoryGuard({
      available: config.assumeMemory === undefined ? hostMemory(async () => (await probes.memory()).available) : assumedMemory(parseSize(config.assumeMemory)),
      marginBytes: parseSize(config.memoryMargin),
    }),
    onChange: () => reconciler.trigger(),
    clock: systemClock,
    logger: logger.child({ component: 'autoscaler' }),
  });

  const link: HubLink = started.add(connectHubLink({
    url: config.hub,
    deviceId: config.deviceId,
    credentials: certificates.credentials,
    logger: logger.child({ component: 'link' }),
    clock: systemClock,
    onlineStatus: async () => ({
      v: PROTOCOL_VERSION,
      state: 'online',
      since: new Date(startedAt).toISOString(),
      facts: await collectFacts({ platform, agentVersion, docker: runtime.facts }),
      gateway: gateway.url,
    }),
    // Certificates are asked for once an answer can reach us; one waiting out a backoff while the hub was away goes now.
    onSubscribed: () => certificates.subscribed(),
    onConnect: () => {
      reconciler.reportLatest();
      sender.connected();
    },
    handlers: {
      desired: async (desired) => {
        const accepted = await target.offer(desired);
        logger.info({ generation: desired.generation, services: desired.services.length, accepted }, 'desired state received');
        if (accepted) reconciler.trigger();
      },
      invalidDesired: (reason) => reconciler.reportError(ErrorCodes.MESSAGE_INVALID, `a desired state was dropped: ${reason}`),
      certificate: (answer) => certificates.answer(answer),
      command: async (cmd) =>
        runCommand(cmd, {
          uptimeMs: () => systemClock.now() - startedAt,
          invalidMessages: () => link.invalidMessages(),
          generation: () => target.get()?.generation ?? null,
          logs: logSessions,
        }),
    },
  }));
  const logSessions = new LogSessions({
    deviceId: config.deviceId,
    runtime,
    agentLog,
    // Offline, a QoS 1 publish would wait for the broker: the session ends instead (the hub has ended it too).
    send: async (message) => {
      if (!link.connected()) throw new Error('not connected to the hub');
      await link.publish('logs', message);
    },
    clock: systemClock,
    logger: logger.child({ component: 'logs' }),
  });
  // Error lines of the services deployed with shipLogs error, into the outbox's logs lane.
  const shipper = started.add(new LogShipper({
    runtime,
    deviceId: config.deviceId,
    desired: () => target.get()?.services ?? [],
    append: appendTelemetry,
    nextId: batchIds('l'),
    clock: systemClock,
    logger: logger.child({ component: 'logs' }),
  }));
  shipper.start();
  const reconciler = started.add(new Reconciler({
    deviceId: config.deviceId,
    platform,
    runtime,
    routes,
    promoted,
    desired: () => target.get(),
    // Offline, a QoS 1 publish would wait for the broker: skip it, and send the newest on reconnect.
    report: async (state) => {
      if (link.connected()) await link.publish('reported', state);
    },
    clock: systemClock,
    logger: logger.child({ component: 'reconcile' }),
    health: httpHealthProbe,
    ports: loopbackPorts(),
    replicas: autoscaler,
    healthTimeoutMs: parseDuration(config.healthTimeout),
    minFreeDiskBytes: parseSize(config.minFreeDisk),
    // The runtime drains requests in flight for up to 30 s on SIGTERM; docker stop must wait that long.
    stopTimeoutSeconds: 35,
    resyncMs: 30_000,
  }));
  // The cached target is converged to at once, hub or no hub.
  reconciler.trigger();
  started.add(autoscaler).start();
  sender.start(link);
  const collector = new MetricsCollector({
    intervalMs: parseDuration(config.telemetryInterval),
    gateway: gateway.metrics,
    device: deviceSampler({ probes, clock: systemClock, logger: telemetryLogger }),
    containers: () => containerMetrics(runtime, config.deviceId, telemetryLogger),
    scaling: autoscaler,
    custom: new CustomMetricsReader({ replicas: routeReplicas(routes), fetch: loopbackMetricsFetch, timeoutMs: 2000, clock: systemClock, logger: telemetryLogger }),
    outbox,
    append: appendTelemetry,
    nextId: batchIds('m'),
    clock: systemClock,
    logger: telemetryLogger,
  });
  started.add(collector).start();
  logger.info({ deviceId: config.deviceId, hub: config.hub, platform, data: dataDir, version: agentVersion }, 'agent started');

  return {
    close: async () => {
      // Before the reconciler: no pass is asked for while it winds down.
      await certificates.close();
      await autoscaler.close();
      await reconciler.close();
      await gateway.close();
      // After the gateway: no sample comes later. Before the sender and outbox close: the last ones are kept.
      await captures.close();
      await requests.close();
      // After the gateway: the last interval's counts are final. Before the outbox closes: they are kept.
      await collector.close();
      await logSessions.close();
      // Before the outbox closes: the last lines are kept.
      await shipper.close();
      await sender.close();
      await link.close();
      await outbox.close();
      logger.info('agent stopped');
    },
  };
}
