/**
 * The agent's own reconcile loop (agent/reconcile/reconciler.ts) for one simulated device, wired as
 * agent/main.ts wires it, over the simulated engine: the serving record in memory, a route table no
 * gateway reads, the engine's simulated `/health`, ports nothing listens on, and the fleet's
 * scheduler as its clock. What a simulated device does with a desired state is decided by the
 * agent's code alone, so a simulated fleet cannot drift from real agents.
 */
import { pino } from 'pino';
import { AgentConfigSchema } from '../../agent/config.js';
import { PromotedContainers, type RecordStore } from '../../agent/reconcile/promoted-containers.js';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import type { BackoffPolicy } from '../../shared/backoff.js';
import { parseDuration } from '../../shared/duration.js';
import type { DesiredState, ReportedState } from '../../shared/protocol.js';
import { parseSize } from '../../shared/size.js';
import { fakePorts } from '../../test/helpers/fake-container-runtime.js';
import type { Scheduler } from './scheduler.js';
import type { SimContainerRuntime } from './sim-runtime.js';

export interface DeviceReconcilerOptions {
  deviceId: string;
  platform: string;
  runtime: SimContainerRuntime;
  desired: () => DesiredState | null;
  /** As the agent's: sends when connected, else gives up at once (the newest is sent on reconnect). */
  report: (state: ReportedState) => Promise<void>;
  scheduler: Scheduler;
  backoff: BackoffPolicy;
  resyncMs: number;
}

/** A thousand devices logging would measure the logger: the hub hears everything from the reports. */
const silent = pino({ level: 'silent' });
/** The agent's defaults. */
const HEALTH_TIMEOUT_MS = parseDuration(AgentConfigSchema.properties.healthTimeout.default as string);
const MIN_FREE_DISK_BYTES = parseSize(AgentConfigSchema.properties.minFreeDisk.default as string);

/** The serving record (DATA/serving.json on a device), kept in memory; none at first, as on a new device. */
function memoryRecord(): RecordStore {
  let text: string | null = null;
  return {
    read: async () => text,
    write: async (next) => {
      text = next;
    },
  };
}

export async function deviceReconciler(o: DeviceReconcilerOptions): Promise<Reconciler> {
  return new Reconciler({
    deviceId: o.deviceId,
    platform: o.platform,
    runtime: o.runtime,
    routes: new RouteTable(),
    promoted: await PromotedContainers.load(memoryRecord(), silent),
    desired: o.desired,
    report: o.report,
    clock: o.scheduler.asClock(),
    logger: silent,
    health: o.runtime.health,
    ports: fakePorts(),
    healthTimeoutMs: HEALTH_TIMEOUT_MS,
    minFreeDiskBytes: MIN_FREE_DISK_BYTES,
    // Nothing runs, so nothing drains.
    stopTimeoutSeconds: 0,
    resyncMs: o.resyncMs,
    backoff: o.backoff,
  });
}
