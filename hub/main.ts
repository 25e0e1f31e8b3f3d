/**
 * Composition root of the hub: wires config, broker, inbox, fleet state and HTTP once.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { formatHostPort, isLoopbackHost, parseHostPort, type HostPort } from '../shared/address.js';
import { systemClock } from '../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { ShutdownStack } from '../shared/shutdown-stack.js';
import { edgemlVersion } from '../shared/version.js';
import type { HubConfig } from './config.js';
import { openBrokerAuth } from './broker/auth.js';
import { startBroker } from './broker/broker.js';
import { startInbox } from './broker/inbox.js';
import { DeviceDirectory } from './fleet/device-directory.js';
import { buildHttpServer } from './http/server.js';

export interface RunningHub {
  http: string;
  mqtt: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Until devices authenticate and API keys exist, anyone who can reach the hub could impersonate a
 * device or read the fleet, so it listens on loopback only.
 */
function requireLoopback(what: string, flag: string, address: HostPort): void {
  if (isLoopbackHost(address.host)) return;
  throw new EdgemlError(
    ErrorCodes.CONFIG_INVALID,
    `invalid configuration: ${flag} ${formatHostPort(address)}: the ${what} has no authentication yet, so it listens on loopback only (127.0.0.1, ::1)`,
  );
}

export async function startHub(config: Readonly<HubConfig>, logger: Logger): Promise<RunningHub> {
  const mqttListen = parseHostPort(config.mqtt);
  const httpListen = parseHostPort(config.http);
  requireLoopback('MQTT broker', '--mqtt', mqttListen);
  requireLoopback('REST API', '--http', httpListen);
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  const parts = new ShutdownStack();
  try {
    const devices = new DeviceDirectory(systemClock);
    const broker = await startBroker({ listen: mqttListen, auth: openBrokerAuth, logger: logger.child({ component: 'broker' }) });
    parts.push(() => broker.close());
    const inbox = await startInbox(
      broker,
      {
        status: (deviceId, status) => {
          devices.applyStatus(deviceId, status);
          logger.info({ deviceId, state: status.state, reason: status.state === 'offline' ? status.reason : undefined }, 'device status');
        },
      },
      logger.child({ component: 'inbox' }),
    );

    const version = edgemlVersion();
    const app = await buildHttpServer({
      logger,
      devices,
      health: {
        version,
        devicesOnline: () => devices.onlineCount(),
        mqtt: () => {
          const s = inbox.stats();
          return { connectedClients: broker.connectedClients(), received: s.received, invalid: s.invalid };
        },
      },
    });
    parts.push(() => app.close());
    try {
      await app.listen({ host: httpListen.host, port: httpListen.port });
    } catch (err) {
      throw new EdgemlError(ErrorCodes.HUB_LISTEN_FAILED, `http server cannot listen on ${config.http}: ${(err as Error).message}`, { cause: err });
    }
    const bound = app.server.address() as AddressInfo;
    const http = formatHostPort({ host: bound.address, port: bound.port });
    logger.info({ http, mqtt: broker.address, data: dataDir, version }, 'hub ready');

    return {
      http,
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
