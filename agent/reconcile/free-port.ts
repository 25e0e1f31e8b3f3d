import { createServer, type AddressInfo } from 'node:net';

/** Where a new container listens: injected, so the reconciler's unit tests hand out ports without sockets. */
export interface PortAllocator {
  next(): Promise<number>;
}

/**
 * A loopback port nothing listens on now. The container binds it a moment later; the small window
 * is covered by the health check, which fails (and is retried with another port) if something took it.
 */
async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Ports handed out lately are remembered: replicas created together must not get one that another has not bound yet. */
const RECENT_KEPT = 256;

export function loopbackPorts(): PortAllocator {
  const recent: number[] = [];
  return {
    next: async () => {
      for (let tries = 0; ; tries++) {
        const port = await freeLoopbackPort();
        if (recent.includes(port) && tries < 16) continue;
        recent.push(port);
        if (recent.length > RECENT_KEPT) recent.shift();
        return port;
      }
    },
  };
}
