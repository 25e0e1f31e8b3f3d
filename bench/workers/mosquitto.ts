/**
 * A private Mosquitto (Debian's) for a benchmark: its own config, password file and ACL in a temp
 * directory, on a free loopback port, pinned to the system-under-test cores. Devices get the same
 * credentials and the same per-device topic rights as on the hub (`pattern` ACLs on the device's own
 * `edgeml/v1/dev/{id}/` channels); one optional consumer may read every device's telemetry.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChannelPublisher, Channels, TOPIC_ROOT } from '../../shared/topics.js';
import type { DeviceCredential } from './mqtt-clients.js';
import { freePort, spawnPinned, stopChild } from './proc.js';

export interface Mosquitto {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
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

async function waitListening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mosquitto exited (${child.exitCode ?? child.signalCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto not listening on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts Mosquitto for `devices` (and `consumer`, if given) with `persistence false`: its
 * persistence is a periodic snapshot (autosave_interval) and never stands between a PUBLISH and
 * its PUBACK, so turning it on would not change what is measured, only add a file write now and then.
 */
export async function startMosquitto(opts: {
  cores: string;
  devices: readonly DeviceCredential[];
  consumer?: { username: string; password: string };
  log: (m: string) => void;
}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-bench-mosquitto-'));
  let child: ChildProcess | null = null;
  const stop = async () => {
    if (child) await stopChild(child, 'SIGTERM', 5_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const users = [...opts.devices.map((d) => `${d.id}:${d.token}`), ...(opts.consumer ? [`${opts.consumer.username}:${opts.consumer.password}`] : [])];
    const passwd = join(dir, 'passwd');
    await writeFile(passwd, `${users.join('\n')}\n`, { mode: 0o600 });
    // Hashed the way Mosquitto recommends (its default: sha512-pbkdf2).
    await promisify(execFile)('mosquitto_passwd', ['-U', passwd], { timeout: 120_000 });
    await writeFile(join(dir, 'acl'), acl(opts.consumer?.username ?? null));
    const conf = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwd}`,
      `acl_file ${join(dir, 'acl')}`,
      'persistence false',
      // A consumer that falls behind must not lose QoS 1 messages to the default queue cap of 1,000.
      'max_queued_messages 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'connection_messages false',
      // Run as is: as root, Mosquitto would otherwise switch to the `mosquitto` user, which cannot read this directory.
      `user ${userInfo().username}`,
    ].join('\n');
    await writeFile(join(dir, 'mosquitto.conf'), `${conf}\n`);
    child = spawnPinned(opts.cores, 'mosquitto', ['-c', join(dir, 'mosquitto.conf')], opts.devices.length + 1024, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    await waitListening(port, child, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr.trim()}`);
    });
    const v = await version();
    opts.log(`mosquitto ${v} on 127.0.0.1:${port} (pid ${child.pid}), ${opts.devices.length} devices in its password file`);
    return { url: `mqtt://127.0.0.1:${port}`, pid: child.pid!, version: v, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
