/**
 * Overload (issue 8, benchmark 3): offered load at 3× a scoring container's capacity, through the
 * edgeml gateway (maxConcurrent 1, maxQueue 10) and through nginx with the comparable limit
 * (`limit_conn` 11 = 1 + 10, answered with 429). What a limit is for: the container keeps serving at
 * its capacity (goodput), accepted requests wait a bounded time (their p99), and the rest are told
 * at once to come back later (the share of 429s, and how fast they come).
 *
 * The container (lib/scoring-container.ts) takes 20 ms per request, one at a time (a timer, not a
 * busy loop): 50 requests/s whatever the concurrency (settings and rounds: lib/overload-rounds.ts). A fixed-rate (open-loop) generator offers
 * 150/s evenly spaced over keep-alive connections, in its own process pinned to the load cores;
 * container, gateway and nginx are pinned to the system-under-test cores.
 *
 *   npx tsx bench/overload.ts [--quick]
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { newSecret } from '../shared/secrets.js';
import { nginxLabel } from './lib/nginx.js';
import { aggregate, CAPACITY, CONNECTIONS, FULL, LIMITS, measureCapacity, measureRounds, OFFERED, QUICK, SERVICE_MS, startProxies, TIMEOUT_MS, type Proxies } from './lib/overload-rounds.js';
import { checkAnswers } from './lib/proxy-check.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext, type ScenarioResult } from './lib/scenario.js';
import { startScoringContainer, type ScoringContainer } from './lib/scoring-container.js';

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.quick ? QUICK : FULL;
  const key = newSecret();
  // How busy the machine was (CI, other work): the 1-minute load average at the start and the end.
  const loadAtStart = loadavg()[0]!;
  let container: ScoringContainer | undefined;
  let proxies: Proxies | undefined;
  try {
    container = await startScoringContainer({ cores: ctx.cores.sut, serviceMs: SERVICE_MS, log: ctx.log });
    proxies = await startProxies([container], key, ctx);
    const { gateway, nginx } = proxies;
    await checkAnswers(gateway.scoreUrl, nginx.scoreUrl, `${container.url}/score`, key);
    const { capacity, run: capacityRun } = await measureCapacity(container, key, s, ctx);
    const samples = await measureRounds(
      { edgeml: { url: gateway.scoreUrl, cpuPids: [container.pid, gateway.pid] }, nginx: { url: nginx.scoreUrl, cpuPids: [container.pid, nginx.pid] } },
      key,
      s,
      ctx,
    );
    const gw = aggregate(samples.edgeml);
    const ng = aggregate(samples.nginx);
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
    await proxies?.stop();
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
