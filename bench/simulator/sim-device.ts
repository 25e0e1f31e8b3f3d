/**
 * One simulated device: its MQTT link, its target (the newest valid desired state, by the rules of
 * agent/reconcile/target-cache.ts, kept in memory), the agent's real reconcile loop over a
 * simulated engine (device-reconciler.ts), and a timeline of when each revision arrived, first
 * served (as its reports say) and last failed (as the simulated engine made it fail).
 */
import { runCommand } from '../../agent/commands.js';
import type { Reconciler } from '../../agent/reconcile/reconciler.js';
import type { Labels } from '../../shared/api/devices.js';
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import { decodeMessage, PROTOCOL_VERSION, type DesiredState, type ReportedService, type ReportedState, type StatusMessage } from '../../shared/protocol.js';
import { edgemlVersion } from '../../shared/version.js';
import type { Channel } from '../../shared/topics.js';
import { deviceReconciler } from './device-reconciler.js';
import type { ResolvedOptions } from './options.js';
import type { Scheduler } from './scheduler.js';
import { SimLink, type LinkState } from './sim-link.js';
import { SimContainerRuntime } from './sim-runtime.js';

/** What happened to one revision of one service on one device (epoch milliseconds). */
export interface RevisionTimeline {
  service: string;
  revision: number;
  /** When a desired state asking for it was accepted. */
  receivedAt: number;
  /** When it first served (null: not yet, or abandoned). */
  runningAt: number | null;
  /** When it last failed, and how many attempts failed so far. */
  failedAt: number | null;
  failedAttempts: number;
}

export interface SimDeviceState {
  id: string;
  index: number;
  labels: Labels;
  platform: string;
  connection: LinkState;
  /** Why the connection last failed, if it did. */
  lastConnectionError: string | null;
  /** The target the device works towards. */
  desired: { epoch: string | null; generation: number } | null;
  /** The newest report made (sent if the device was connected, else sent on reconnect). */
  reported: ReportedState | null;
  services: ReportedService[];
  timeline: RevisionTimeline[];
  /** Messages dropped because they failed validation. */
  invalidMessages: number;
  /** MQTT PUBLISH packets the device sent and received (resends included). */
  messages: { sent: number; received: number };
}

export interface SimDeviceOptions {
  index: number;
  id: string;
  token: string;
  labels: Labels;
  options: ResolvedOptions;
  scheduler: Scheduler;
  clock: Clock;
}

/**
 * Whether `next` replaces `current` (target-cache.ts): a higher generation in the same epoch, or any
 * generation from another epoch (a restarted hub counts again).
 */
function takesTarget(current: DesiredState | null, next: DesiredState): boolean {
  return current === null || current.epoch !== next.epoch || next.generation > current.generation;
}

export class SimDevice {
  readonly #link: SimLink;
  #reconciler!: Reconciler;
  readonly #platform: string;
  readonly #startedAt: number;
  #target: DesiredState | null = null;
  /** The newest report the loop made, sent or not. */
  #latest: ReportedState | null = null;
  #invalid = 0;
  readonly #timeline = new Map<string, RevisionTimeline>();

  /** The serving record of the device's loop is loaded (from memory) first, as the agent loads its file. */
  static async create(d: SimDeviceOptions): Promise<SimDevice> {
    const device = new SimDevice(d);
    const { options: o, scheduler } = d;
    const runtime = new SimContainerRuntime({
      index: d.index,
      deviceId: d.id,
      platform: device.#platform,
      scheduler,
      seed: o.seed,
      timing: o.timing,
      failures: o.failures,
      stickyFailures: o.stickyFailures,
      pullBytes: o.pullBytes,
      desired: () => device.#target,
      onFailure: ({ service, revision }) => {
        const entry = device.entry(service, revision);
        entry.failedAt = d.clock.now();
        entry.failedAttempts++;
      },
    });
    device.#reconciler = await deviceReconciler({
      deviceId: d.id,
      platform: device.#platform,
      runtime,
      desired: () => device.#target,
      report: (state) => device.report(state),
      scheduler,
      backoff: o.retry,
      resyncMs: o.resyncMs,
    });
    return device;
  }

  private constructor(private readonly d: SimDeviceOptions) {
    const { options: o, scheduler, clock } = d;
    this.#platform = o.platform(d.index);
    this.#startedAt = clock.now();
    this.#link = new SimLink({
      url: o.mqttUrl,
      deviceId: d.id,
      token: d.token,
      onlineStatus: () => this.onlineStatus(),
      onMessage: (channel, payload) => this.receive(channel, payload),
      // As the agent: reports made while offline were not sent, so the newest goes now.
      onConnect: () => this.#reconciler.reportLatest(),
      scheduler,
      seed: o.seed,
      ...o.connect,
    });
  }

  get id(): string {
    return this.d.id;
  }

  /** Connects and runs a first pass (with no target yet it reports `idle`, as an agent does). */
  start(): Promise<void> {
    const announced = this.#link.start();
    this.#reconciler.trigger();
    return announced;
  }

  /** Pulls the plug: the hub gets the last will (`offline`, `lost`); the device keeps reconciling. */
  goOffline(): void {
    this.#link.goOffline();
  }

  /** Reconnects; resolves once the device has announced itself `online` again. */
  goOnline(): Promise<void> {
    return this.#link.goOnline();
  }

  state(): SimDeviceState {
    const reported = this.#latest;
    return {
      id: this.d.id,
      index: this.d.index,
      labels: this.d.labels,
      platform: this.#platform,
      connection: this.#link.state,
      lastConnectionError: this.#link.lastError,
      desired: this.#target && { epoch: this.#target.epoch ?? null, generation: this.#target.generation },
      reported,
      services: reported?.services ?? [],
      timeline: [...this.#timeline.values()].map((e) => ({ ...e })),
      invalidMessages: this.#invalid,
      messages: this.#link.messages,
    };
  }

  /** The timeline of one revision, if it ever reached this device. */
  revision(service: string, revision: number): RevisionTimeline | undefined {
    return this.#timeline.get(`${service}@${revision}`);
  }

  /** MQTT PUBLISH packets sent and received so far (cheaper than `state()` for a whole fleet). */
  messages(): { sent: number; received: number } {
    return this.#link.messages;
  }

  async stop(): Promise<void> {
    await this.#reconciler.close();
    await this.#link.close();
  }

  private entry(service: string, revision: number): RevisionTimeline {
    const key = `${service}@${revision}`;
    let entry = this.#timeline.get(key);
    if (!entry) {
      entry = { service, revision, receivedAt: this.d.clock.now(), runningAt: null, failedAt: null, failedAttempts: 0 };
      this.#timeline.set(key, entry);
    }
    return entry;
  }

  /** The loop's `report`, as agent/main.ts sends it; a revision first reported running goes in the timeline. */
  private async report(state: ReportedState): Promise<void> {
    this.#latest = state;
    for (const s of state.services) {
      if (s.phase === 'running' && s.servingRevision === s.revision) this.entry(s.name, s.revision).runningAt ??= this.d.clock.now();
    }
    // Offline, a QoS 1 publish would wait for the broker: skipped, and the newest is sent on reconnect.
    if (this.#link.connected()) await this.#link.publish('reported', state);
  }

  private receive(channel: Channel, payload: Buffer): void {
    if (channel === 'desired') {
      const decoded = decodeMessage('desired', payload);
      if (!decoded.ok) {
        this.#invalid++;
        this.#reconciler.reportError(ErrorCodes.MESSAGE_INVALID, `a desired state was dropped: ${decoded.error}`);
        return;
      }
      if (!takesTarget(this.#target, decoded.value)) return;
      this.#target = decoded.value;
      for (const service of decoded.value.services) this.entry(service.name, service.revision);
      this.#reconciler.trigger();
    } else if (channel === 'cmd') {
      const decoded = decodeMessage('cmd', payload);
      if (!decoded.ok) {
        this.#invalid++;
        return;
      }
      const ack = runCommand(decoded.value, {
        uptimeMs: () => this.d.clock.now() - this.#startedAt,
        invalidMessages: () => this.#invalid,
        generation: () => this.#target?.generation ?? null,
      });
      this.#link.publish('cmd/ack', ack).catch(() => undefined);
    }
  }

  private onlineStatus(): StatusMessage {
    const [os = 'linux', arch = 'amd64'] = this.#platform.split('/');
    return {
      v: PROTOCOL_VERSION,
      state: 'online',
      since: new Date(this.#startedAt).toISOString(),
      // Marked as simulated wherever the hub shows facts; no gateway, since there is none to score on.
      facts: {
        hostname: this.d.id,
        platform: this.#platform,
        arch: arch === 'amd64' ? 'x64' : arch,
        os: { distro: 'edgeml fleet simulator', release: edgemlVersion(), kernel: 'simulated' },
        cpus: 4,
        memoryBytes: 4 * 1024 ** 3,
        docker: { version: 'simulated', apiVersion: 'simulated', os, arch },
        agentVersion: `${edgemlVersion()}-fleet-simulator`,
      },
    };
  }
}
