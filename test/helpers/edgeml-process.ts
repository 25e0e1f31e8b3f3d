/**
 * Starts the real `bin/edgeml` as a child process and follows its JSON log lines, so tests can wait
 * for "hub ready" (which carries the ports it bound: tests pass port 0 and never pick fixed ports).
 * Everything a process prints is also kept in the run's artefacts directory, with a `ps` snapshot
 * once a hub or agent is ready, `ps` samples every few seconds while a hub runs (short-lived
 * children: builds, docker, curl) and `docker inspect` of an agent's containers before they go, for
 * the secret-leak scan (test/helpers/secret-ledger.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { inspectDeviceContainers, removeDeviceContainers } from './docker.js';
import { exec } from './exec.js';
import { recordSecret, saveArtefact } from './secret-ledger.js';
import { waitFor } from './wait.js';

export const EDGEML_BIN = fileURLToPath(new URL('../../bin/edgeml', import.meta.url));

export type LogLine = Record<string, unknown> & { level?: string; msg?: string };

export class EdgemlProcess {
  readonly logs: LogLine[] = [];
  /** Output lines that were not JSON (warnings, stack traces); kept for failure messages. */
  readonly rawOutput: string[] = [];
  private exit: Promise<number | null>;

  /** The artefact file with everything the process printed. */
  readonly logFile: string;

  constructor(readonly child: ChildProcess, name = 'edgeml') {
    let buffer = '';
    const logName = `process-${name}-${child.pid ?? 'unspawned'}.log`;
    this.logFile = saveArtefact(logName, '');
    const onData = (d: Buffer) => {
      saveArtefact(logName, d.toString());
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.rawOutput.push(line);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    // 'close', not 'exit': only then has every line the process printed been read.
    this.exit = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  waitForLog(what: string, match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    return waitFor(`${what} (process output so far: ${this.tail()})`, () => {
      if (!this.running && !this.logs.some(match)) throw new Error(`process exited with ${this.child.exitCode ?? this.child.signalCode}`);
      return this.logs.find(match);
    }, timeoutMs);
  }

  tail(n = 8): string {
    return [...this.rawOutput, ...this.logs.map((l) => JSON.stringify(l))].slice(-n).join('\n');
  }

  /** The exit code once the process ends by itself. */
  exited(): Promise<number | null> {
    return this.exit;
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exit;
  }
}

export function spawnEdgeml(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): EdgemlProcess {
  const child = spawn(process.execPath, [EDGEML_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new EdgemlProcess(child, args.slice(0, 2).join('-'));
  t.teardown(async () => {
    await proc.kill('SIGKILL');
  });
  return proc;
}

export async function tempDir(t: ExecutionContext, prefix = 'edgeml-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface HubProcess extends EdgemlProcess {
  http: string;
  mqtt: string;
  /** http://HOST:PORT, or https:// when the hub's "hub ready" line says it serves TLS (`url` or `tls: true`). */
  url: string;
  /** The hub's CA certificate file (DATA/ca/ca.crt), for EDGEML_CA and curl --cacert; present once the hub made its CA. */
  caFile: string;
  data: string;
  /** The admin key the hub wrote to DATA/admin.key at its first start. */
  adminKey: string;
}

/** Starts a hub on port 0; pass `data` to restart one over an existing data directory. */
export async function startHub(t: ExecutionContext, extraArgs: string[] = [], opts: { data?: string; env?: NodeJS.ProcessEnv } = {}): Promise<HubProcess> {
  const data = opts.data ?? (await tempDir(t, 'edgeml-hub-'));
  const proc = spawnEdgeml(t, ['hub', 'start', '--data', data, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', ...extraArgs], opts.env);
  // Generous: image builds and emulated containers in other test files can starve a starting hub.
  const ready = await proc.waitForLog('hub ready', (l) => l.msg === 'hub ready', 60_000);
  const adminKey = (await readFile(join(data, 'admin.key'), 'utf8')).trim();
  recordSecret('admin-key', adminKey, 'startHub');
  await snapshotProcesses(`hub-${proc.child.pid}`);
  sampleProcessesWhileRunning(t);
  const url = typeof ready.url === 'string' ? ready.url : `${ready.tls === true ? 'https' : 'http'}://${String(ready.http)}`;
  return Object.assign(proc, { http: String(ready.http), mqtt: String(ready.mqtt), url, caFile: join(data, 'ca', 'ca.crt'), data, adminKey });
}

/** An agent process; `token` (from enrollment) goes in the environment, as a device would keep it. */
export async function startAgent(t: ExecutionContext, opts: { mqttUrl: string; deviceId: string; token?: string; data?: string; extraArgs?: string[] }): Promise<EdgemlProcess> {
  const data = opts.data ?? (await tempDir(t, 'edgeml-agent-'));
  if (opts.token) recordSecret('device-token', opts.token, `startAgent ${opts.deviceId}`);
  const env = opts.token ? { EDGEML_AGENT_TOKEN: opts.token } : {};
  // Any free port for the gateway: several agents share this machine.
  const gateway = opts.extraArgs?.includes('--gateway') ? [] : ['--gateway', '127.0.0.1:0'];
  // Plain HTTP on loopback unless a test asks for the gateway's TLS (test/integration/gateway-tls*.test.ts do).
  const tls = opts.extraArgs?.includes('--gateway-tls') ? [] : ['--gateway-tls', 'off'];
  const proc = spawnEdgeml(t, ['agent', 'start', '--hub', opts.mqttUrl, '--device-id', opts.deviceId, '--data', data, ...gateway, ...tls, ...(opts.extraArgs ?? [])], env);
  await proc.waitForLog('agent connected', (l) => l.msg === 'connected to hub');
  await snapshotProcesses(`agent-${proc.child.pid}`);
  // Teardowns run last first: the containers are inspected (for the leak scan), then the agent is
  // stopped and its containers removed (a stopped agent leaves its containers serving, by design).
  t.teardown(async () => {
    await proc.kill('SIGKILL');
    await removeDeviceContainers(opts.deviceId);
  });
  t.teardown(() => inspectDeviceContainers(opts.deviceId).then(() => undefined));
  return proc;
}

let snapshots = 0;

/** Saves `ps -eo args` (every process's argument list) to the artefacts; returns it. */
export async function snapshotProcesses(label: string): Promise<string> {
  const ps = await exec('ps', ['-eo', 'args']);
  saveArtefact(`ps-${process.pid}-${++snapshots}-${label}.txt`, ps.stdout);
  return ps.stdout;
}

const SAMPLE_EVERY_MS = 2000;

/**
 * One sampler per test process, running while any hub it started runs: every few seconds,
 * `ps -eo args` lines not seen before go to one artefact (a process that lives between samples is
 * missed; one that runs for seconds, like a build or a curl, is not).
 */
const sampler = { users: 0, timer: undefined as NodeJS.Timeout | undefined, busy: false, seen: new Set<string>() };

function sampleProcessesWhileRunning(t: ExecutionContext): void {
  if (sampler.users++ === 0) {
    sampler.timer = setInterval(() => void sampleOnce(), SAMPLE_EVERY_MS);
    // Never what keeps a test process alive.
    sampler.timer.unref();
  }
  t.teardown(() => {
    if (--sampler.users === 0) clearInterval(sampler.timer);
  });
}

async function sampleOnce(): Promise<void> {
  if (sampler.busy) return;
  sampler.busy = true;
  try {
    const { stdout } = await exec('ps', ['-eo', 'args'], { timeoutMs: SAMPLE_EVERY_MS });
    const fresh = stdout.split('\n').filter((line) => line && !sampler.seen.has(line));
    for (const line of fresh) sampler.seen.add(line);
    if (fresh.length > 0) saveArtefact(`ps-${process.pid}-samples.txt`, `${fresh.join('\n')}\n`);
  } catch {
    // A sample that could not be taken is a gap, not a test failure.
  } finally {
    sampler.busy = false;
  }
}
