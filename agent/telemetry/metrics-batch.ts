/**
 * A metrics batch from what the agent gathered over one interval: the gateway's counts per service,
 * the device and container figures, and the state of the telemetry queue.
 */
import { PROTOCOL_VERSION, type ContainerMetrics, type DeviceMetrics, type MetricsBatch, type OutboxStatus, type ServiceIntervalMetrics } from '../../shared/protocol.js';
import type { MetricsReport, ServiceMetrics } from '../gateway/metrics.js';
import type { Outbox } from './outbox.js';

/** Field by field: whatever else the gateway keeps does not leak onto the wire. */
export function serviceIntervalMetrics(m: ServiceMetrics): ServiceIntervalMetrics {
  return {
    requests: m.requests,
    responses: { '2xx': m.responses['2xx'], '3xx': m.responses['3xx'], '4xx': m.responses['4xx'], '5xx': m.responses['5xx'] },
    unauthenticated: m.unauthenticated,
    rejected: m.rejected,
    queueTimeouts: m.queueTimeouts,
    upstreamErrors: m.upstreamErrors,
    aborted: m.aborted,
    inFlight: m.inFlight,
    queued: m.queued,
    latencyMs: { boundsMs: [...m.latencyMs.boundsMs], counts: [...m.latencyMs.counts], sumMs: m.latencyMs.sumMs },
    ...(m.replicas === undefined ? {} : { replicas: m.replicas }),
  };
}

export function outboxStatus(outbox: Pick<Outbox, 'dropped' | 'size'>): OutboxStatus {
  const size = outbox.size();
  return { dropped: outbox.dropped(), queued: { metrics: size.metrics.count, capture: size.capture.count, feedback: size.feedback.count } };
}

export function metricsBatch(o: { id: string; report: MetricsReport; device: DeviceMetrics; containers: ContainerMetrics[]; outbox: OutboxStatus }): MetricsBatch {
  return {
    v: PROTOCOL_VERSION,
    kind: 'metrics',
    id: o.id,
    from: new Date(o.report.from).toISOString(),
    to: new Date(o.report.to).toISOString(),
    device: o.device,
    containers: o.containers,
    services: Object.fromEntries(Object.entries(o.report.services).map(([name, m]) => [name, serviceIntervalMetrics(m)])),
    outbox: o.outbox,
  };
}
