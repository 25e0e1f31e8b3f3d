/**
 * Overload with replicas (issue 15): the overload benchmark's offered load (150/s, 3× one scoring
 * container's capacity) through the edgeml gateway in front of 3 replicas (maxConcurrent 1 and
 * maxQueue 10 per replica: fewest in flight first, one FIFO queue of 30) and in front of 1, beside
 * nginx with an upstream of the same 3 containers (`least_conn`) and of 1, with `limit_conn` of the
 * same bound (33 and 11) answered with 429: goodput at 3 replicas vs 1, the p99 of accepted
 * requests and the share of 429s, all in one run (lib/overload-rounds.ts).
 *
 * Then the time from the load's start to 3 ready replicas on a real device: a real hub and agent,
 * the service deployed with `--min-replicas 1 --max-replicas 3 --scale-up-window 5s`
 * (lib/scale-up.ts). nginx has no autoscaler: that row has no peer figure.
 *
 *   npm run build && npx tsx bench/overload-replicas.ts [--quick]
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { newSecret } from '../shared/secrets.js';
import { nginxLabel } from './lib/nginx.js';
import { aggregate, CAPACITY, CONNECTIONS, FULL, LIMITS, measureCapacity, measureRounds, OFFERED, QUICK, SERVICE_MS, startProxies, TIMEOUT_MS, type Proxies } from './lib/overload-rounds.js';
import { checkAnswers } from './lib/proxy-check.js';
import { describeDecisions, measureScaleUp, REPLICAS, SCALE_UP_WINDOW } from './lib/scale-up.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext, type ScenarioResult } from './lib/scenario.js';
import { startScoringContainer, type ScoringContainer } from './lib/scoring-container.js';

/** Seconds of load the scale-up gets at most: the window, up to two container starts, the report. */
const SCALE_LOAD_SECONDS = { quick: 20, full: 30 };

async function replicaRounds(ctx: ScenarioContext) {
  const s = ctx.quick ? QUICK : FULL;
  const key = newSecret();
  const containers: ScoringContainer[] = [];
  const proxies: Proxies[] = [];
  try {
    for (let i = 0; i < REPLICAS; i++) containers.push(await startScoringContainer({ cores: ctx.cores.sut, serviceMs: SERVICE_MS, log: ctx.log }));
    const many = await startProxies(containers, key, ctx);
    proxies.push(many);
    // The 1-replica setup is the overload scenario's, on the first container.
    const one = await startProxies([containers[0]!], key, ctx);
    proxies.push(one);
    await checkAnswers(many.gateway.scoreUrl, many.nginx.scoreUrl, `${containers[0]!.url}/score`, key);
    const { capacity, run: capacityRun } = await measureCapacity(containers[0]!, key, s, ctx);
    const allPids = containers.map((c) => c.pid);
    const samples = await measureRounds(
      {
        edgeml3: { url: many.gateway.scoreUrl, cpuPids: [...allPids, many.gateway.pid] },
        nginx3: { url: many.nginx.scoreUrl, cpuPids: [...allPids, many.nginx.pid] },
        edgeml1: { url: one.gateway.scoreUrl, cpuPids: [containers[0]!.pid, one.gateway.pid] },
        nginx1: { url: one.nginx.scoreUrl, cpuPids: [containers[0]!.pid, one.nginx.pid] },
      },
      key,
      s,
      ctx,
    );
    return {
      s,
      capacity,
      capacityRun,
      samples,
      edgeml3: aggregate(samples.edgeml3),
      nginx3: aggregate(samples.nginx3),
      edgeml1: aggregate(samples.edgeml1),
      nginx1: aggregate(samples.nginx1),
      limitConn: { replicas: many.limitConn, one: one.limitConn },
      nginxConfig: many.nginx.config,
    };
  } finally {
    for (const p of proxies) await p.stop();
    for (const c of containers) await c.stop().catch((err: unknown) => ctx.log(`container stop: ${String(err)}`));
  }
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const loadAtStart = loadavg()[0]!;
  const r = await replicaRounds(ctx);
  const scale = await measureScaleUp(ctx, ctx.quick ? SCALE_LOAD_SECONDS.quick : SCALE_LOAD_SECONDS.full);
  const at = `${OFFERED}/s offered`;
  const n = REPLICAS;
  const rows: Row[] = [
    { metric: `goodput (2xx/s), ${n} replicas, ${at}`, unit: 'req/s', edgeml: r.edgeml3.goodput, peer: r.nginx3.goodput, better: 'higher', note: `capacity ${n} × ${r.capacity.toFixed(1)}/s measured direct; nginx: ${n} servers, least_conn` },
    { metric: `goodput (2xx/s), 1 replica, ${at}`, unit: 'req/s', edgeml: r.edgeml1.goodput, peer: r.nginx1.goodput, better: 'higher', note: 'the overload scenario, again in this run' },
    { metric: `goodput, ${n} replicas vs 1`, unit: '×', edgeml: r.edgeml3.goodput / r.edgeml1.goodput, peer: r.nginx3.goodput / r.nginx1.goodput, better: 'higher', note: `${n}× = each replica as busy as one alone` },
    { metric: `p99 latency of accepted requests, ${n} replicas`, unit: 'ms', edgeml: r.edgeml3.okP99, peer: r.nginx3.okP99, better: 'lower', note: `floor ≈ (1 + ${n} × ${LIMITS.maxQueue} / ${n}) × ${SERVICE_MS} ms` },
    { metric: 'p99 latency of accepted requests, 1 replica', unit: 'ms', edgeml: r.edgeml1.okP99, peer: r.nginx1.okP99, better: 'lower' },
    { metric: `share answered 429, ${n} replicas`, unit: '%', edgeml: r.edgeml3.rejectedShare * 100, peer: r.nginx3.rejectedShare * 100, better: 'lower', note: `limit ${r.limitConn.replicas} = ${n} × (1 + ${LIMITS.maxQueue}); offered = capacity` },
    { metric: 'share answered 429, 1 replica', unit: '%', edgeml: r.edgeml1.rejectedShare * 100, peer: r.nginx1.rejectedShare * 100, better: 'lower', note: `about 1 − capacity/offered ≈ ${((1 - r.capacity / OFFERED) * 100).toFixed(0)}%` },
    {
      metric: 'requests neither 2xx nor 429 (errors, 5xx, timeouts)',
      unit: 'requests',
      edgeml: r.edgeml3.failed + r.edgeml1.failed,
      peer: r.nginx3.failed + r.nginx1.failed,
      better: 'lower',
      note: `of ${r.edgeml3.sent + r.edgeml1.sent} and ${r.nginx3.sent + r.nginx1.sent} sent`,
    },
    { metric: `proxy CPU per second, ${n} replicas, ${at}`, unit: 'ms/s', edgeml: r.edgeml3.proxyCpuMs / r.s.seconds, peer: r.nginx3.proxyCpuMs / r.s.seconds, better: 'lower' },
    {
      metric: `load start → ${n} ready replicas (autoscaled from 1)`,
      unit: 's',
      edgeml: scale.seconds,
      peer: null,
      better: 'lower',
      note: `real hub and agent, --scale-up-window ${SCALE_UP_WINDOW}; decisions ${describeDecisions(scale.decisions)}; nginx has no autoscaler (its ${n} servers are configured up front)`,
    },
  ];
  return {
    rows,
    details: {
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings: { ...r.s, serviceMs: SERVICE_MS, capacityByConstruction: CAPACITY, offered: OFFERED, limitsPerReplica: LIMITS, replicas: n, limitConn: r.limitConn, connections: CONNECTIONS, timeoutMs: TIMEOUT_MS, cores: ctx.cores },
      capacity: { measured: r.capacity, run: r.capacityRun },
      edgeml: { replicas: r.edgeml3, one: r.edgeml1 },
      nginx: { replicas: r.nginx3, one: r.nginx1 },
      rounds: r.samples,
      scaleUp: { seconds: scale.seconds, decisions: scale.decisions, window: SCALE_UP_WINDOW, load: scale.load, image: scale.image },
      nginxVersion: await nginxLabel(),
      nginxConfig: r.nginxConfig,
    },
  };
}

export const scenario: Scenario = {
  name: 'overload-replicas',
  title: `3× overload of a ${CAPACITY}/s scoring container, served by ${REPLICAS} replicas vs 1, and the autoscaler's time to ${REPLICAS}`,
  peer: `nginx (Debian) with ${REPLICAS} upstream servers (least_conn) and limit_conn ${REPLICAS * (LIMITS.maxConcurrent + LIMITS.maxQueue)} → 429`,
  run,
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runStandalone(scenario);
