/**
 * A private Mosquitto (Debian's) for a benchmark: its own config in a temp directory, on a free
 * loopback port, pinned to the system-under-test cores, `persistence false`, no cap on queued
 * messages. Either with authentication — a password file holding the devices' credentials and the
 * same per-device topic rights as on the hub (`pattern` ACLs on the device's own
 * `edgeml/v1/dev/{id}/` channels), plus one optional consumer that may read every device's
 * telemetry (telemetry-ingest) — or anonymous (the rollout fan-out floor).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChannelPublisher, Channels, TOPIC_ROOT } from '../../shared/topics.js';
import type { DeviceCredential } from './mqtt-clients.js';
import { exitReason, freePort, spawnPinned, stopChild, waitListening } from './processes.js';

export interface Mosquitto {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

export interface MosquittoAuth {
  /** Each may connect as client id = username = device id, password = token. */
  devices: readonly DeviceCredential[];
  /** A user that may read every device's telemetry. */
  consumer?: { username: string; password: string };
}

export interface MosquittoOptions {
  cores: string;
  /** Password file and per-device ACL; omitted: `allow_anonymous true`, no ACL. */
  auth?: MosquittoAuth;
  /**
   * `max_inflight_messages`: QoS 1 messages in flight to each client; 0 is no cap. Omitted:
   * Mosquitto's default (20).
   */
  maxInflightMessages?: number;
  /** Open files it needs (one per connection, plus some); omitted: this process's limit. */
  files?: number;
  log?: (m: string) => void;
}

async function version(): Promise<string> {
  // `mosquitto -h` prints "mosquitto version X" and exits 3.
  const out = await promisify(execFile)('mosquitto', ['-h']).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return /mosquitto version (\S+)/.exec(out.stdout)?.[1] ?? 'unknown';
}

function acl(consumer: string | null): string {
  // What the hub's broker allows a device (hub/broker/auth.ts): publish the agent's channels and
  // subscribe to the hub's, under its own prefix only.
  const lines = Channels.map((c) => `pattern ${ChannelPublisher[c] === 'agent' ? 'write' : 'read'} ${TOPIC_ROOT}/%u/${c}`);
  if (consumer) lines.push(`user ${consumer}`, `topic read ${TOPIC_ROOT}/+/telemetry`);
  return `${lines.join('\n')}\n`;
}

/** The password file (hashed the way Mosquitto recommends, its default sha512-pbkdf2) and the ACL; their config lines. */
async function writeAuth(dir: string, auth: MosquittoAuth): Promise<string[]> {
  const users = [...auth.devices.map((d) => `${d.id}:${d.token}`), ...(auth.consumer ? [`${auth.consumer.username}:${auth.consumer.password}`] : [])];
  const passwd = join(dir, 'passwd');
  await writeFile(passwd, `${users.join('\n')}\n`, { mode: 0o600 });
  await promisify(execFile)('mosquitto_passwd', ['-U', passwd], { timeout: 120_000 });
  await writeFile(join(dir, 'acl'), acl(auth.consumer?.username ?? null));
  return ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${join(dir, 'acl')}`];
}

/**
 * Starts Mosquitto with `persistence false`: its persistence is a periodic snapshot
 * (autosave_interval) and never stands between a PUBLISH and its PUBACK, so turning it on would
 * not change what is measured, only add a file write now and then.
 */
export async function startMosquitto(opts: MosquittoOptions): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-bench-mosquitto-'));
  let child: ChildProcess | null = null;
  const stop = async () => {
    if (child) await stopChild(child, 'SIGTERM', 5_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const conf = [
      `listener ${port} 127.0.0.1`,
      ...(opts.auth ? await writeAuth(dir, opts.auth) : ['allow_anonymous true']),
      'persistence false',
      // A consumer that falls behind must not lose QoS 1 messages to the default queue cap of 1,000.
      'max_queued_messages 0',
      ...(opts.maxInflightMessages === undefined ? [] : [`max_inflight_messages ${opts.maxInflightMessages}`]),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'connection_messages false',
      // Run as is: as root, Mosquitto would otherwise switch to the `mosquitto` user, which cannot read this directory.
      `user ${userInfo().username}`,
    ].join('\n');
    await writeFile(join(dir, 'mosquitto.conf'), `${conf}\n`);
    const c = spawnPinned(opts.cores, 'mosquitto', ['-c', join(dir, 'mosquitto.conf')], { files: opts.files, stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    await waitListening('mosquitto', port, 15_000, () => exitReason(c)).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr.trim()}`);
    });
    const v = await version();
    const who = opts.auth ? `${opts.auth.devices.length} devices in its password file` : 'anonymous';
    opts.log?.(`mosquitto ${v} on 127.0.0.1:${port} (pid ${c.pid}), ${who}`);
    return { url: `mqtt://127.0.0.1:${port}`, pid: c.pid!, version: v, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
