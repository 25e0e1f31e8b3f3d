/**
 * Composition root of the agent: wires config, Docker, facts, target cache and the hub link once.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseHostPort } from '../shared/address.js';
import { systemClock } from '../shared/clock.js';
import { parseDuration } from '../shared/duration.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { parseSize } from '../shared/size.js';
import type { Logger } from '../shared/logger.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { edgemlVersion } from '../shared/version.js';
import type { AgentConfig } from './config.js';
import { runCommand } from './commands.js';
import { connectHubLink } from './link/hub-link.js';
import { startGateway } from './gateway/server.js';
import { PromotedContainers, recordFile } from './reconcile/promoted-containers.js';
import { Reconciler } from './reconcile/reconciler.js';
import { RouteTable } from './reconcile/routes.js';
import { TargetCache } from './reconcile/target-cache.js';
import { dockerRuntime } from './runtime/docker.js';
import { collectFacts, nativePlatform } from './telemetry/facts.js';

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

export async function startAgent(config: Readonly<AgentConfig>, logger: Logger): Promise<RunningAgent> {
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
  const routes = new RouteTable();
  const gateway = await startGateway({
    listen: parseHostPort(config.gateway),
    routes,
    desired: () => target.get()?.services.map((s) => s.name) ?? [],
    // A gateway bound to 0.0.0.0 cannot say how clients reach it.
    advertiseUrl: config.advertiseUrl,
    clock: systemClock,
    logger: logger.child({ component: 'gateway' }),
  });

  const link = connectHubLink({
    url: config.hub,
    deviceId: config.deviceId,
    token: config.token,
    ca: config.hubCa === undefined ? undefined : await readHubCa(config.hubCa),
    logger: logger.child({ component: 'link' }),
    clock: systemClock,
    onlineStatus: async () => ({
      v: PROTOCOL_VERSION,
      state: 'online',
      since: new Date(startedAt).toISOString(),
      facts: await collectFacts({ platform, agentVersion, docker: runtime.facts }),
      gateway: gateway.url,
    }),
    onConnect: () => reconciler.reportLatest(),
    handlers: {
      desired: async (desired) => {
        const accepted = await target.offer(desired);
        logger.info({ generation: desired.generation, services: desired.services.length, accepted }, 'desired state received');
        if (accepted) reconciler.trigger();
      },
      invalidDesired: (reason) => reconciler.reportError(ErrorCodes.MESSAGE_INVALID, `a desired state was dropped: ${reason}`),
      command: async (cmd) =>
        runCommand(cmd, {
          uptimeMs: () => systemClock.now() - startedAt,
          invalidMessages: () => link.invalidMessages(),
          generation: () => target.get()?.generation ?? null,
        }),
    },
  });
  const reconciler = new Reconciler({
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
    healthTimeoutMs: parseDuration(config.healthTimeout),
    minFreeDiskBytes: parseSize(config.minFreeDisk),
    // The runtime drains requests in flight for up to 30 s on SIGTERM; docker stop must wait that long.
    stopTimeoutSeconds: 35,
    resyncMs: 30_000,
  });
  // The cached target is converged to at once, hub or no hub.
  reconciler.trigger();
  logger.info({ deviceId: config.deviceId, hub: config.hub, platform, data: dataDir, version: agentVersion }, 'agent started');

  return {
    close: async () => {
      await reconciler.close();
      await gateway.close();
      await link.close();
      logger.info('agent stopped');
    },
  };
}
