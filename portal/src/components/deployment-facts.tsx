/**
 * How the Deployments pages write a deployment's settings: one wording for the list and the detail
 * page, close to the CLI's flags, so an operator can tell what `service update` would change.
 */
import type { Deployment } from '../../../shared/api/deployments.js';
import type { Device } from '../../../shared/api/devices.js';
import type { RolloutPhase } from '../../../shared/api/rollouts.js';
import './deployment-facts.css';

/** shared/api/rollouts.ts ACTIVE_ROLLOUT_PHASES (a value import would pull typebox into the bundle). */
export const ACTIVE_PHASES: readonly RolloutPhase[] = ['running', 'paused'];
export const isActive = (phase: RolloutPhase) => ACTIVE_PHASES.includes(phase);

/** `repo@sha256:0123456789ab…`: the digest's head is enough to tell revisions apart; the title has it all. */
export function ShortImage({ image }: { image: string }) {
  const at = image.indexOf('@sha256:');
  const short = at < 0 ? image : `${image.slice(0, at + 8 + 12)}…`;
  return (
    <code title={image} class="mono">
      {short}
    </code>
  );
}

export const targetText = (target: Record<string, string>) =>
  Object.entries(target)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** A label selector, one unbroken KEY=VALUE per pair (a narrow column wraps between pairs only). */
export function Target({ target }: { target: Record<string, string> }) {
  return (
    <span class="selector">
      {Object.entries(target).map(([k, v]) => (
        <code key={k}>
          {k}={v}
        </code>
      ))}
    </span>
  );
}

export function bytesText(bytes: number | null): string {
  if (bytes === null) return 'no limit';
  for (const [unit, size] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes} B`;
}

export const replicasText = (d: Pick<Deployment, 'scale'>) =>
  d.scale.minReplicas === d.scale.maxReplicas ? `${d.scale.minReplicas} fixed` : `${d.scale.minReplicas}–${d.scale.maxReplicas} autoscaled`;

export const limitsText = (d: Pick<Deployment, 'limits'>) => `${d.limits.maxConcurrent} in flight, ${d.limits.maxQueue} queued per replica`;

export const captureText = (d: Pick<Deployment, 'capture'>) => (d.capture.rate === 0 ? 'off' : `${+(d.capture.rate * 100).toFixed(2)}% of requests`);

/**
 * Devices whose last report has the service behind their gateway (any revision). A revoked device
 * serves nobody any more; an offline one may, or may not: callers say how many are offline.
 */
export function servingDevices(devices: readonly Device[], service: string): { device: Device; revision: number }[] {
  const serving: { device: Device; revision: number }[] = [];
  for (const device of devices) {
    if (device.status === 'revoked') continue;
    const s = device.services.find((x) => x.name === service);
    if (s?.servingRevision != null) serving.push({ device, revision: s.servingRevision });
  }
  return serving;
}

/** "3", "3 (1 offline)": how many devices serve it, and how many of those were last heard of offline. */
export function servingText(serving: readonly { device: Device }[]): string {
  const offline = serving.filter((s) => s.device.status === 'offline').length;
  return offline ? `${serving.length} (${offline} offline)` : String(serving.length);
}
