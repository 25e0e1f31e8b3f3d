/**
 * The edgeml scoring gateway (agent/gateway/server.ts, as the agent runs it) alone in its own
 * process, with one route to one or more scoring containers (its replicas), so the benchmarks can
 * pin it to the system-under-test cores and read its CPU time apart from the load generator's.
 *
 *   node --import tsx bench/lib/gateway-process.ts '{"port":PORT,"keyHash":"…","limits":{…}}'
 *   node --import tsx bench/lib/gateway-process.ts '{"ports":[P1,P2,P3],"keyHash":"…","limits":{…}}'
 *
 * Prints one line `{"ready":"http://127.0.0.1:PORT"}` on stdout once it listens (its warnings are
 * pino JSON lines on the same stream); SIGTERM closes it. `startGatewayProcess` does all that.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startGateway } from '../../agent/gateway/server.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import { systemClock } from '../../shared/clock.js';
import { createLogger } from '../../shared/logger.js';
import { spawnPinned, stopChild } from './processes.js';

export const BENCH_SERVICE = 'bench';

export type GatewaySettings = (
  | {
      /** The scoring container's loopback port. */
      port: number;
    }
  | {
      /** The loopback ports of the service's replicas, one container each; limits are per replica. */
      ports: number[];
    }
) & {
  /** sha256 hex of the service key (shared/secrets.ts hashSecret). */
  keyHash: string;
  limits: { maxConcurrent: number; maxQueue: number };
};

export interface GatewayProcess {
  /** `http://127.0.0.1:PORT/v1/services/bench/score` */
  scoreUrl: string;
  pid: number;
  stop(): Promise<void>;
}

async function main(settings: GatewaySettings): Promise<void> {
  const routes = new RouteTable();
  routes.set(
    {
      name: BENCH_SERVICE,
      revision: 1,
      image: `127.0.0.1:5000/bench/scorer@sha256:${'0'.repeat(64)}`,
      limits: { ...settings.limits, memoryBytes: null, cpus: null },
      keyHash: settings.keyHash,
      models: [],
    },
    ('ports' in settings ? settings.ports : [settings.port]).map((port) => ({ container: `bench-scorer-${port}`, port })),
  );
  const gateway = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    routes,
    desired: () => [BENCH_SERVICE],
    clock: systemClock,
    logger: createLogger({ name: 'bench-gateway', level: 'warn', pretty: false }),
  });
  process.stdout.write(`${JSON.stringify({ ready: gateway.url })}\n`);
  await once(process, 'SIGTERM');
  await gateway.close();
  process.exit(0);
}

/** Starts the gateway process pinned to `cores`; resolves once it listens. */
export async function startGatewayProcess(settings: GatewaySettings, cores: string, timeoutMs = 30_000): Promise<GatewayProcess> {
  const entry = fileURLToPath(import.meta.url);
  const child = spawnPinned(cores, process.execPath, ['--import', 'tsx', entry, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  const stop = () => stopChild(child, 'SIGTERM', 5000);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the gateway process did not start within ${timeoutMs} ms`)), timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { ready?: string };
          if (msg.ready) {
            clearTimeout(timer);
            resolve(msg.ready);
          }
        } catch {
          // a log line
        }
      });
      void exited.then(([code]) => {
        clearTimeout(timer);
        reject(new Error(`the gateway process exited (${String(code)}): ${stderr.trim()}`));
      });
    });
    return { scoreUrl: `${url}/v1/services/${BENCH_SERVICE}/score`, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(JSON.parse(process.argv[2] ?? '{}') as GatewaySettings);
}
