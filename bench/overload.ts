/**
 * Overload (issue 8, benchmark 3): offered load at 3× a scoring container's capacity, through the
 * edgeml gateway (maxConcurrent 1, maxQueue 10) and through nginx with the comparable limit
 * (`limit_conn` 11 = 1 + 10, answered with 429). What a limit is for: the container keeps serving at
 * its capacity (goodput), accepted requests wait a bounded time (their p99), and the rest are told
 * at once to come back later (the share of 429s, and how fast they come).
 *
 * The container (lib/scoring-container.ts) takes 20 ms per request, one at a time (a timer, not a
 * busy loop): 50 requests/s whatever the concurrency. A fixed-rate (open-loop) generator offers
 * 150/s evenly spaced over keep-alive connections, in its own process pinned to the load cores;
 * container, gateway and nginx are pinned to the system-under-test cores.
 *
 *   npx tsx bench/overload.ts [--quick]
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { hashSecret, newSecret } from '../shared/secrets.js';
import { BENCH_SERVICE, startGatewayProcess, type GatewayProcess } from './lib/gateway-process.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { nginxLabel, startNginx, type NginxProcess } from './lib/nginx.js';
import { checkAnswers } from './lib/proxy-check.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext, type ScenarioResult } from './lib/scenario.js';
import { SAMPLE_BODY, startScoringContainer, type ScoringContainer } from './lib/scoring-container.js';
import { median } from './lib/stats.js';

const SERVICE_MS = 20;
const CAPACITY = 1000 / SERVICE_MS;
const OFFERED = 3 * CAPACITY;
const LIMITS = { maxConcurrent: 1, maxQueue: 10 };
/** Enough that the generator never waits for a connection: 150/s × ~0.25 s accepted latency ≈ 40 in flight. */
const CONNECTIONS = 128;
const TIMEOUT_MS = 10_000;

interface Settings {
  rounds: number;
  warmupSeconds: number;
  seconds: number;
  capacitySeconds: number;
}

/** Rounds alternate the order (edgeml, nginx, then nginx, edgeml, …) so a drift in the machine's load hits both alike. */
const QUICK: Settings = { rounds: 2, warmupSeconds: 1, seconds: 5, capacitySeconds: 2 };
const FULL: Settings = { rounds: 4, warmupSeconds: 2, seconds: 15, capacitySeconds: 5 };

type TargetName = 'edgeml' | 'nginx';

interface Measured {
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
    proxyCpuMs: r.cpuMs[1] ?? 0,
  };
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.quick ? QUICK : FULL;
  const key = newSecret();
  // How busy the machine was (CI, other work): the 1-minute load average at the start and the end.
  const loadAtStart = loadavg()[0]!;
  let container: ScoringContainer | undefined;
  let gateway: GatewayProcess | undefined;
  let nginx: NginxProcess | undefined;
  try {
    container = await startScoringContainer({ cores: ctx.cores.sut, serviceMs: SERVICE_MS, log: ctx.log });
    gateway = await startGatewayProcess({ port: container.port, keyHash: hashSecret(key), limits: LIMITS }, ctx.cores.sut);
    nginx = await startNginx({
      upstreamPort: container.port,
      location: `/v1/services/${BENCH_SERVICE}/score`,
      cores: ctx.cores.sut,
      // One key for every request (the server's name), so the limit is per service as the gateway's is.
      http: ['limit_conn_zone $server_name zone=scorer:1m;', 'limit_conn_status 429;', 'limit_conn_log_level info;'],
      locationDirectives: [`limit_conn scorer ${LIMITS.maxConcurrent + LIMITS.maxQueue};`],
    });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const targets: Record<TargetName, { url: string; pid: number }> = {
      edgeml: { url: gateway.scoreUrl, pid: gateway.pid },
      nginx: { url: nginx.scoreUrl, pid: nginx.pid },
    };
    await checkAnswers(targets.edgeml.url, targets.nginx.url, `${container.url}/score`, key);

    ctx.log(`capacity: ${s.capacitySeconds} s × 4 connections direct to the container`);
    const [capacityRun] = await runLoad(
      { url: `${container.url}/score`, headers, body: SAMPLE_BODY, phases: [{ mode: 'closed', connections: 4, seconds: s.capacitySeconds }] },
      ctx.cores.load,
    );
    const capacity = capacityRun!.ok.count / capacityRun!.seconds;
    ctx.log(`  ${capacity.toFixed(1)} requests/s (by construction ${CAPACITY})`);

    const samples: Record<TargetName, Measured[]> = { edgeml: [], nginx: [] };
    for (let round = 1; round <= s.rounds; round++) {
      const order: TargetName[] = round % 2 ? ['edgeml', 'nginx'] : ['nginx', 'edgeml'];
      for (const name of order) {
        const t = targets[name];
        ctx.log(`round ${round}/${s.rounds}: ${name}, ${s.warmupSeconds} s at ${CAPACITY / 2}/s, then ${s.seconds} s at ${OFFERED}/s`);
        const [, load] = await runLoad(
          {
            url: t.url,
            headers,
            body: SAMPLE_BODY,
            cpuPids: [container.pid, t.pid],
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

    const agg = (name: TargetName): Measured => {
      const all = samples[name];
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
    };
    const gw = agg('edgeml');
    const ng = agg('nginx');
    const at = `${OFFERED}/s offered`;
    const rows: Row[] = [
      { metric: `goodput (2xx/s), ${at}`, unit: 'req/s', edgeml: gw.goodput, peer: ng.goodput, better: 'higher', note: `capacity ${capacity.toFixed(1)}/s measured direct` },
      { metric: 'goodput vs capacity', unit: '× capacity', edgeml: gw.goodput / capacity, peer: ng.goodput / capacity, better: 'higher' },
      { metric: 'p50 latency of accepted requests', unit: 'ms', edgeml: gw.okP50, peer: ng.okP50, better: 'lower' },
      { metric: 'p99 latency of accepted requests', unit: 'ms', edgeml: gw.okP99, peer: ng.okP99, better: 'lower', note: `floor ≈ (1 + 10) × ${SERVICE_MS} ms` },
      {
        metric: 'share answered 429',
        unit: '%',
        edgeml: gw.rejectedShare * 100,
        peer: ng.rejectedShare * 100,
        // Every request is 2xx, 429 or counted below: fewer 429s at the same offered load is more served.
        better: 'lower',
        note: `about 1 − capacity/offered ≈ ${((1 - capacity / OFFERED) * 100).toFixed(0)}%`,
      },
      { metric: 'p50 latency of 429s', unit: 'ms', edgeml: gw.rejectedP50, peer: ng.rejectedP50, better: 'lower' },
      { metric: 'p99 latency of 429s', unit: 'ms', edgeml: gw.rejectedP99, peer: ng.rejectedP99, better: 'lower' },
      { metric: 'requests neither 2xx nor 429 (errors, 5xx, timeouts)', unit: 'requests', edgeml: gw.failed, peer: ng.failed, better: 'lower', note: `of ${gw.sent} and ${ng.sent} sent` },
      { metric: `proxy CPU per second, ${at}`, unit: 'ms/s', edgeml: gw.proxyCpuMs / s.seconds, peer: ng.proxyCpuMs / s.seconds, better: 'lower' },
    ];
    return {
      rows,
      details: {
        loadAverage: { start: loadAtStart, end: loadavg()[0]! },
        settings: { ...s, serviceMs: SERVICE_MS, capacityByConstruction: CAPACITY, offered: OFFERED, limits: LIMITS, connections: CONNECTIONS, timeoutMs: TIMEOUT_MS, cores: ctx.cores },
        capacity: { measured: capacity, run: capacityRun },
        edgeml: gw,
        nginx: ng,
        rounds: samples,
        nginxVersion: await nginxLabel(),
        nginxConfig: nginx.config,
      },
    };
  } finally {
    await nginx?.stop().catch((err: unknown) => ctx.log(`nginx stop: ${String(err)}`));
    await gateway?.stop().catch((err: unknown) => ctx.log(`gateway stop: ${String(err)}`));
    await container?.stop().catch((err: unknown) => ctx.log(`container stop: ${String(err)}`));
  }
}

export const scenario: Scenario = {
  name: 'overload',
  title: `3× overload of a ${CAPACITY}/s scoring container, limit 1 + 10`,
  peer: 'nginx (Debian) with limit_conn 11 → 429',
  run,
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runStandalone(scenario);
