/**
 * What the hub knows about each device that has spoken: its last status, facts and when it was
 * last heard from. Fed by the inbox; read by the REST API.
 */
import type { Clock } from '../../shared/clock.js';
import type { DeviceFacts, StatusMessage } from '../../shared/protocol.js';

export type DeviceState = 'online' | 'offline';

export interface DeviceRecord {
  id: string;
  state: DeviceState;
  /** Why it went offline: a clean `shutdown`, or `lost` (the broker sent its last will). */
  offlineReason: 'shutdown' | 'lost' | null;
  onlineSince: string | null;
  lastSeen: string;
  facts: DeviceFacts | null;
}

export class DeviceDirectory {
  private readonly devices = new Map<string, DeviceRecord>();

  constructor(private readonly clock: Clock) {}

  applyStatus(deviceId: string, status: StatusMessage): void {
    const previous = this.devices.get(deviceId);
    const lastSeen = new Date(this.clock.now()).toISOString();
    this.devices.set(
      deviceId,
      status.state === 'online'
        ? { id: deviceId, state: 'online', offlineReason: null, onlineSince: status.since, lastSeen, facts: status.facts }
        : {
            id: deviceId,
            state: 'offline',
            offlineReason: status.reason,
            onlineSince: null,
            lastSeen,
            // Facts outlive the connection: an operator still wants to know what the box is.
            facts: previous?.facts ?? null,
          },
    );
  }

  get(deviceId: string): DeviceRecord | undefined {
    const record = this.devices.get(deviceId);
    return record && structuredClone(record);
  }

  list(): DeviceRecord[] {
    return [...this.devices.values()].sort((a, b) => a.id.localeCompare(b.id)).map((r) => structuredClone(r));
  }

  onlineCount(): number {
    let n = 0;
    for (const d of this.devices.values()) if (d.state === 'online') n++;
    return n;
  }
}
