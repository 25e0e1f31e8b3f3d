/**
 * What the overload scenarios share (overload.ts: one scoring container; overload-replicas.ts:
 * three): the container's speed and the limits, the edgeml gateway and nginx set up in front of a
 * set of containers with the same limit, and the measured rounds at a fixed offered load.
 *
 * Each container takes 20 ms per request, one at a time (lib/scoring-container.ts): 50 requests/s.
 * The offered load is 150/s (3× one container) evenly spaced (open loop, lib/load.ts), after a
 * warm-up at half a container's capacity; rounds rotate the order of the targets so a drift in the
 * machine's load hits them all alike.
 */
import { hashSecret } from '../../shared/secrets.js';
import { BENCH_SERVICE, startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { runLoad, type LoadResult } from './load.js';
import { startNginx, type NginxProcess } from './nginx.js';
import type { ScenarioContext } from './scenario.js';
import { SAMPLE_BODY, type ScoringContainer } from './scoring-container.js';
import { median } from './stats.js';

export const SERVICE_MS = 20;
/** One container's requests per second. */
export const CAPACITY = 1000 / SERVICE_MS;
export const OFFERED = 3 * CAPACITY;
/** Per replica, as the gateway applies them. */
export const LIMITS = { maxConcurrent: 1, maxQueue: 10 };
/** Enough that the generator never waits for a connection: 150/s × ~0.25 s accepted latency ≈ 40 in flight. */
export const CONNECTIONS = 128;
export const TIMEOUT_MS = 10_000;

export interface RoundSettings {
  rounds: number;
  warmupSeconds: number;
  seconds: number;
  capacitySeconds: number;
}

export const QUICK: RoundSettings = { rounds: 2, warmupSeconds: 1, seconds: 5, capacitySeconds: 2 };
export const FULL: RoundSettings = { rounds: 4, warmupSeconds: 2, seconds: 15, capacitySeconds: 5 };

export interface Measured {
  offered: number;
  goodput: number;
  okP50: number;
  okP99: number;
  rejectedShare: number;
  rejectedP50: number;
  rejectedP99: number;
  /** Neither 2xx nor 429: other statuses, errors, timeouts. */
  failed: number;
  sent: number;
  maxLagMs: number;
  proxyCpuMs: number;
}

function measured(r: LoadResult): Measured {
  const other = Object.values(r.other).reduce((a, b) => a + b, 0);
  return {
    offered: r.sent / r.seconds,
    goodput: r.ok.count / r.seconds,
    okP50: r.ok.p50,
    okP99: r.ok.p99,
    rejectedShare: r.sent ? r.tooMany.count / r.sent : 0,
    rejectedP50: r.tooMany.p50,
    rejectedP99: r.tooMany.p99,
    failed: other + r.errors,
    sent: r.sent,
    maxLagMs: r.maxLagMs ?? 0,
    // The proxy's pid comes last in `cpuPids`.
    proxyCpuMs: r.cpuMs[r.cpuMs.length - 1] ?? 0,
  };
}

/** Medians over the rounds; counts are summed and the generator's lag is the worst. */
export function aggregate(all: readonly Measured[]): Measured {
  const pick = (k: keyof Measured) => median(all.map((x) => x[k]));
  return {
    offered: pick('offered'),
    goodput: pick('goodput'),
    okP50: pick('okP50'),
    okP99: pick('okP99'),
    rejectedShare: pick('rejectedShare'),
    rejectedP50: pick('rejectedP50'),
    rejectedP99: pick('rejectedP99'),
    failed: all.reduce((sum, x) => sum + x.failed, 0),
    sent: all.reduce((sum, x) => sum + x.sent, 0),
    maxLagMs: Math.max(...all.map((x) => x.maxLagMs)),
    proxyCpuMs: pick('proxyCpuMs'),
  };
}

export const headersFor = (key: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${key}` });

export interface Proxies {
  gateway: GatewayProcess;
  nginx: NginxProcess;
  /** nginx's `limit_conn`: (maxConcurrent + maxQueue) × replicas, the gateway's bound for the service. */
  limitConn: number;
  stop(): Promise<void>;
}

/**
 * The edgeml gateway (one route, a replica per container, LIMITS per replica) and nginx (an
 * upstream of the same containers, `least_conn` when there are several, and `limit_conn` of the
 * gateway's whole bound answered with 429) in front of `containers`. nginx's `max_conns=1` per
 * server is not used: without the commercial `queue` directive, nginx 1.22 answers 502 ("no live
 * upstreams") to every request beyond the servers' max_conns instead of waiting.
 */
export async function startProxies(containers: readonly ScoringContainer[], key: string, ctx: ScenarioContext): Promise<Proxies> {
  const ports = containers.map((c) => c.port);
  const limitConn = (LIMITS.maxConcurrent + LIMITS.maxQueue) * ports.length;
  const gateway = await startGatewayProcess({ ports, keyHash: hashSecret(key), limits: LIMITS }, ctx.cores.sut);
  try {
    const nginx = await startNginx({
      upstreamPorts: ports,
      upstream: ports.length > 1 ? ['least_conn;'] : [],
      location: `/v1/services/${BENCH_SERVICE}/score`,
      cores: ctx.cores.sut,
      // One key for every request (the server's name), so the limit is per service as the gateway's is.
      http: ['limit_conn_zone $server_name zone=scorer:1m;', 'limit_conn_status 429;', 'limit_conn_log_level info;'],
      locationDirectives: [`limit_conn scorer ${limitConn};`],
    });
    const stop = async () => {
      await nginx.stop().catch((err: unknown) => ctx.log(`nginx stop: ${String(err)}`));
      await gateway.stop().catch((err: unknown) => ctx.log(`gateway stop: ${String(err)}`));
    };
    return { gateway, nginx, limitConn, stop };
  } catch (err) {
    await gateway.stop().catch(() => undefined);
    throw err;
  }
}

/** Requests/s one container serves, closed loop with 4 connections, direct. */
export async function measureCapacity(container: ScoringContainer, key: string, s: RoundSettings, ctx: ScenarioContext): Promise<{ capacity: number; run: LoadResult }> {
  ctx.log(`capacity: ${s.capacitySeconds} s × 4 connections direct to the container`);
  const [run] = await runLoad(
    { url: `${container.url}/score`, headers: headersFor(key), body: SAMPLE_BODY, phases: [{ mode: 'closed', connections: 4, seconds: s.capacitySeconds }] },
    ctx.cores.load,
  );
  const capacity = run!.ok.count / run!.seconds;
  ctx.log(`  ${capacity.toFixed(1)} requests/s (by construction ${CAPACITY})`);
  return { capacity, run: run! };
}

export interface Target {
  url: string;
  /** Processes whose CPU time is read around each round; the proxy's last. */
  cpuPids: number[];
}

/** `s.rounds` rounds over every target at OFFERED/s, the order rotated each round; every round's figures per target. */
export async function measureRounds<N extends string>(targets: Record<N, Target>, key: string, s: RoundSettings, ctx: ScenarioContext): Promise<Record<N, Measured[]>> {
  const names = Object.keys(targets) as N[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as Measured[]])) as Record<N, Measured[]>;
  for (let round = 1; round <= s.rounds; round++) {
    const shift = (round - 1) % names.length;
    const order = [...names.slice(shift), ...names.slice(0, shift)];
    for (const name of order) {
      const t = targets[name];
      ctx.log(`round ${round}/${s.rounds}: ${name}, ${s.warmupSeconds} s at ${CAPACITY / 2}/s, then ${s.seconds} s at ${OFFERED}/s`);
      const [, load] = await runLoad(
        {
          url: t.url,
          headers: headersFor(key),
          body: SAMPLE_BODY,
          cpuPids: t.cpuPids,
          phases: [
            { mode: 'open', rate: CAPACITY / 2, connections: CONNECTIONS, seconds: s.warmupSeconds, timeoutMs: TIMEOUT_MS },
            { mode: 'open', rate: OFFERED, connections: CONNECTIONS, seconds: s.seconds, timeoutMs: TIMEOUT_MS },
          ],
        },
        ctx.cores.load,
      );
      const m = measured(load!);
      samples[name].push(m);
      ctx.log(
        `  ${name}: goodput ${m.goodput.toFixed(1)}/s, accepted p99 ${m.okP99.toFixed(1)} ms, 429 ${(m.rejectedShare * 100).toFixed(1)}% (p99 ${m.rejectedP99.toFixed(2)} ms), other ${m.failed}, generator lag ≤ ${m.maxLagMs.toFixed(1)} ms`,
      );
    }
  }
  return samples;
}
