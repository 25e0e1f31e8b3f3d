/**
 * Composition root of the hub: wires config, broker, inbox, fleet state and HTTP once.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseHostPort, formatHostPort } from '../shared/address.js';
import { systemClock } from '../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
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

export async function startHub(config: Readonly<HubConfig>, logger: Logger): Promise<RunningHub> {
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  const devices = new DeviceDirectory(systemClock);
  const broker = await startBroker({ listen: parseHostPort(config.mqtt), auth: openBrokerAuth, logger: logger.child({ component: 'broker' }) });
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
  const listen = parseHostPort(config.http);
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    await broker.close();
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
      await app.close();
      await broker.close();
      logger.info('hub stopped');
    },
  };
}
