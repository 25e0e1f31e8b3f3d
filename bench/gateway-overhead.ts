/**
 * Gateway overhead (issue 8, benchmark 2): what the edgeml scoring gateway costs in front of a
 * trivial scoring container, against nginx as a plain reverse proxy in front of the same container,
 * and against no proxy at all.
 *
 * One scoring container (the real Node runtime, a score.js that doubles a number; see
 * lib/scoring-container.ts), three ways to reach it, measured in turn (rounds interleave them):
 *   direct   POST http://127.0.0.1:C/score
 *   edgeml   POST /v1/services/bench/score on the gateway (own process, API key checked, limits on but
 *            high enough never to refuse here, metrics on, capture off)
 *   nginx    the same path on nginx (1 worker, keepalive 64 to the container, no access log)
 * Container, gateway and nginx are pinned to the system-under-test cores, the load generator
 * (autocannon) to the others. For each: the most it serves with 32 connections (requests/s, p50,
 * p99, the proxy's CPU per 1,000 requests), then one connection at a time (p50, p99: the latency a
 * hop adds when nothing queues).
 *
 *   npx tsx bench/gateway-overhead.ts [--quick]
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { hashSecret, newSecret } from '../shared/secrets.js';
import { BENCH_SERVICE, startGatewayProcess, type GatewayProcess } from './lib/gateway-process.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { nginxLabel, startNginx, type NginxProcess } from './lib/nginx.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext, type ScenarioResult } from './lib/scenario.js';
import { checkAnswers } from './lib/proxy-check.js';
import { SAMPLE_BODY, startScoringContainer, type ScoringContainer } from './lib/scoring-container.js';
import { median } from './lib/stats.js';

const CONNECTIONS = 32;

interface Settings {
  rounds: number;
  warmupSeconds: number;
  loadSeconds: number;
  serialSeconds: number;
}

/** Rounds alternate the order (direct, edgeml, nginx, then nginx, edgeml, direct, …); figures are medians over rounds. */
const QUICK: Settings = { rounds: 1, warmupSeconds: 2, loadSeconds: 4, serialSeconds: 3 };
const FULL: Settings = { rounds: 3, warmupSeconds: 2, loadSeconds: 8, serialSeconds: 5 };

type TargetName = 'direct' | 'edgeml' | 'nginx';

interface Measured {
  /** 2xx/s with CONNECTIONS connections. */
  rps: number;
  p50: number;
  p99: number;
  /** One connection. */
  serialP50: number;
  serialP99: number;
  /** The proxy's (or, direct, the container's) CPU per 1,000 answered requests under load, ms. */
  cpuMsPer1k: number;
  containerCpuMsPer1k: number;
  /** Answers other than 2xx, and failed requests, in all measured phases. */
  failures: number;
}

/** A proxy cannot be faster than no proxy: a figure below direct is the machine's noise, shown as 0 (the raw figures are in details). */
const added = (proxied: number, direct: number): number => Math.max(0, proxied - direct);
const ATLEAST0 = 'below direct (noise) shows as 0';

const failuresOf = (r: LoadResult) => r.errors + r.tooMany.count + Object.values(r.other).reduce((a, b) => a + b, 0);

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.quick ? QUICK : FULL;
  const key = newSecret();
  // How busy the machine was (CI, other work): the 1-minute load average at the start and the end.
  const loadAtStart = loadavg()[0]!;
  let container: ScoringContainer | undefined;
  let gateway: GatewayProcess | undefined;
  let nginx: NginxProcess | undefined;
  try {
    container = await startScoringContainer({ cores: ctx.cores.sut, log: ctx.log });
    gateway = await startGatewayProcess({ port: container.port, keyHash: hashSecret(key), limits: { maxConcurrent: 256, maxQueue: 1024 } }, ctx.cores.sut);
    nginx = await startNginx({ upstreamPort: container.port, location: `/v1/services/${BENCH_SERVICE}/score`, cores: ctx.cores.sut });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const targets: Record<TargetName, { url: string; proxyPid: number | null }> = {
      direct: { url: `${container.url}/score`, proxyPid: null },
      edgeml: { url: gateway.scoreUrl, proxyPid: gateway.pid },
      nginx: { url: nginx.scoreUrl, proxyPid: nginx.pid },
    };
    await checkAnswers(targets.edgeml.url, targets.nginx.url, targets.direct.url, key);

    const samples: Record<TargetName, Measured[]> = { direct: [], edgeml: [], nginx: [] };
    for (let round = 1; round <= s.rounds; round++) {
      const order: TargetName[] = round % 2 ? ['direct', 'edgeml', 'nginx'] : ['nginx', 'edgeml', 'direct'];
      for (const name of order) {
        const t = targets[name];
        const pids = [container.pid, ...(t.proxyPid === null ? [] : [t.proxyPid])];
        ctx.log(`round ${round}/${s.rounds}: ${name}, ${s.warmupSeconds} s warm-up, ${s.loadSeconds} s × ${CONNECTIONS} connections, ${s.serialSeconds} s × 1`);
        const [, load, serial] = await runLoad(
          {
            url: t.url,
            headers,
            body: SAMPLE_BODY,
            cpuPids: pids,
            phases: [
              { mode: 'closed', connections: CONNECTIONS, seconds: s.warmupSeconds },
              { mode: 'closed', connections: CONNECTIONS, seconds: s.loadSeconds },
              { mode: 'closed', connections: 1, seconds: s.serialSeconds },
            ],
          },
          ctx.cores.load,
        );
        if (!load || !serial || load.ok.count === 0) throw new Error(`${name}: no request answered 2xx (${JSON.stringify(load)})`);
        const per1k = (ms: number | undefined) => ((ms ?? 0) / load.ok.count) * 1000;
        samples[name].push({
          rps: load.ok.count / load.seconds,
          p50: load.ok.p50,
          p99: load.ok.p99,
          serialP50: serial.ok.p50,
          serialP99: serial.ok.p99,
          cpuMsPer1k: per1k(t.proxyPid === null ? load.cpuMs[0] : load.cpuMs[1]),
          containerCpuMsPer1k: per1k(load.cpuMs[0]),
          failures: failuresOf(load) + failuresOf(serial),
        });
        ctx.log(`  ${name}: ${Math.round(load.ok.count / load.seconds)} req/s, p50 ${load.ok.p50.toFixed(2)} ms, p99 ${load.ok.p99.toFixed(2)} ms; 1 connection p50 ${serial.ok.p50.toFixed(3)} ms`);
      }
    }

    const m = (name: TargetName): Measured => {
      const all = samples[name];
      const pick = (k: keyof Measured) => median(all.map((x) => x[k]));
      return {
        rps: pick('rps'),
        p50: pick('p50'),
        p99: pick('p99'),
        serialP50: pick('serialP50'),
        serialP99: pick('serialP99'),
        cpuMsPer1k: pick('cpuMsPer1k'),
        containerCpuMsPer1k: pick('containerCpuMsPer1k'),
        failures: all.reduce((sum, x) => sum + x.failures, 0),
      };
    };
    const direct = m('direct');
    const gw = m('edgeml');
    const ng = m('nginx');
    const d = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x >= 1 ? 2 : 3));
    const c = `${CONNECTIONS} connections`;
    const rows: Row[] = [
      { metric: `requests/s, ${c}`, unit: 'req/s', edgeml: gw.rps, peer: ng.rps, better: 'higher', note: `direct ${d(direct.rps)}` },
      { metric: `throughput vs direct, ${c}`, unit: '× direct', edgeml: gw.rps / direct.rps, peer: ng.rps / direct.rps, better: 'higher' },
      { metric: `p50 latency, ${c}`, unit: 'ms', edgeml: gw.p50, peer: ng.p50, better: 'lower', note: `direct ${d(direct.p50)}` },
      { metric: `p99 latency, ${c}`, unit: 'ms', edgeml: gw.p99, peer: ng.p99, better: 'lower', note: `direct ${d(direct.p99)}` },
      { metric: 'p50 latency, 1 connection', unit: 'ms', edgeml: gw.serialP50, peer: ng.serialP50, better: 'lower', note: `direct ${d(direct.serialP50)}` },
      { metric: 'p99 latency, 1 connection', unit: 'ms', edgeml: gw.serialP99, peer: ng.serialP99, better: 'lower', note: `direct ${d(direct.serialP99)}` },
      { metric: 'added p50 latency over direct, 1 connection', unit: 'ms', edgeml: added(gw.serialP50, direct.serialP50), peer: added(ng.serialP50, direct.serialP50), better: 'lower', note: ATLEAST0 },
      { metric: 'added p99 latency over direct, 1 connection', unit: 'ms', edgeml: added(gw.serialP99, direct.serialP99), peer: added(ng.serialP99, direct.serialP99), better: 'lower', note: ATLEAST0 },
      { metric: `added p50 latency over direct, ${c}`, unit: 'ms', edgeml: added(gw.p50, direct.p50), peer: added(ng.p50, direct.p50), better: 'lower', note: ATLEAST0 },
      { metric: `added p99 latency over direct, ${c}`, unit: 'ms', edgeml: added(gw.p99, direct.p99), peer: added(ng.p99, direct.p99), better: 'lower', note: ATLEAST0 },
      { metric: `proxy CPU per 1,000 requests, ${c}`, unit: 'ms', edgeml: gw.cpuMsPer1k, peer: ng.cpuMsPer1k, better: 'lower', note: `the container itself: ${d(direct.containerCpuMsPer1k)} direct` },
    ];
    const failures = direct.failures + gw.failures + ng.failures;
    if (failures > 0) rows[0]!.note += `; ${failures} requests not 2xx (see details)`;
    return {
      rows,
      details: {
        loadAverage: { start: loadAtStart, end: loadavg()[0]! },
        settings: { ...s, connections: CONNECTIONS, gatewayLimits: { maxConcurrent: 256, maxQueue: 1024 }, cores: ctx.cores },
        direct,
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
  name: 'gateway-overhead',
  title: 'scoring gateway overhead in front of a trivial container',
  peer: 'nginx (Debian) as a plain reverse proxy',
  run,
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runStandalone(scenario);
