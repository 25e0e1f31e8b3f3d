/**
 * How many replicas of a service each device runs, as devices report them: the lines `edgeml device
 * show` adds under its services, and the per-device rows of `edgeml service show`. Agents older than
 * replicas report no counts; they show as `-` (JSON `null`) rather than a guess.
 */
import type { Device, DeviceStatus } from '../../shared/api/devices.js';
import type { ReplicaCounts, ReportedService } from '../../shared/protocol.js';
import type { HubClient } from '../../client/hub-client.js';
import { formatTime, renderTable } from '../output.js';

/** `2/3`: ready of desired. */
export function formatReplicas(r: Pick<ReplicaCounts, 'desired' | 'ready'>): string {
  return `${r.ready}/${r.desired}`;
}

/**
 * For `device show`: one line per reported service with its counts and, when there are any, why the
 * resource guard holds it back and the autoscaler's latest decision. Empty when no service reports counts.
 */
export function renderDeviceReplicas(services: readonly ReportedService[]): string {
  const lines = services.flatMap((s) => {
    if (!s.replicas) return [];
    const out = [`  ${s.name}: replicas ${formatReplicas(s.replicas)}${s.replicas.capacity ? `, ${s.replicas.capacity}` : ''}`];
    if (s.lastScale) out.push(`    last scaled ${s.lastScale.from} → ${s.lastScale.to} at ${formatTime(s.lastScale.at)}: ${s.lastScale.reason}`);
    return out;
  });
  return lines.length ? `replicas:\n${lines.join('\n')}\n` : '';
}

/** One device's replicas of one service (`service show`, and its `--json`). */
export interface ServiceReplicaRow {
  device: string;
  deviceStatus: DeviceStatus;
  /** The revision the device's gateway routes to; null when none serves. */
  revision: number | null;
  /** Null for an agent older than replicas. */
  replicas: { desired: number; ready: number } | null;
  /** Why the resource guard holds the count below what the load asks (`capacity: …`); null when it does not. */
  capacity: string | null;
}

/** The rows of the devices that report `service`, by device id. */
export function serviceReplicaRows(service: string, devices: readonly Pick<Device, 'id' | 'status' | 'services'>[]): ServiceReplicaRow[] {
  return devices
    .flatMap((d) => {
      const s = d.services.find((x) => x.name === service);
      if (!s) return [];
      return [{
        device: d.id,
        deviceStatus: d.status,
        revision: s.servingRevision,
        replicas: s.replicas ? { desired: s.replicas.desired, ready: s.replicas.ready } : null,
        capacity: s.replicas?.capacity ?? null,
      }];
    })
    .sort((a, b) => a.device.localeCompare(b.device));
}

export function renderServiceReplicas(rows: readonly ServiceReplicaRow[]): string {
  return renderTable(
    ['DEVICE', 'STATUS', 'REVISION', 'REPLICAS', 'CAPACITY'],
    rows.map((r) => [r.device, r.deviceStatus, r.revision === null ? '-' : String(r.revision), r.replicas ? formatReplicas(r.replicas) : '-', r.capacity ?? '-']),
    '(no device reports this service)',
  );
}

/** The rows for `service`, from the hub's devices list (each device with its reported services). */
export async function fetchServiceReplicas(client: Pick<HubClient, 'call'>, service: string): Promise<ServiceReplicaRow[]> {
  const { devices } = await client.call('listDevices');
  return serviceReplicaRows(service, devices);
}
