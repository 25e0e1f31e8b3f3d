/** Valid telemetry batches to start tests from (shared/protocol.ts `TelemetryBatch`). */
import { emptyHistogram } from '../../shared/latency-histogram.js';
import type { CaptureSample, CapturesBatch, MetricsBatch, ServiceIntervalMetrics } from '../../shared/protocol.js';

export function serviceInterval(overrides: Partial<ServiceIntervalMetrics> = {}): ServiceIntervalMetrics {
  return {
    requests: 0,
    responses: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    unauthenticated: 0,
    rejected: 0,
    queueTimeouts: 0,
    upstreamErrors: 0,
    aborted: 0,
    inFlight: 0,
    queued: 0,
    latencyMs: { ...emptyHistogram(), boundsMs: [...emptyHistogram().boundsMs] },
    ...overrides,
  };
}

export function metricsBatch(overrides: Partial<MetricsBatch> = {}): MetricsBatch {
  return {
    v: 1,
    kind: 'metrics',
    id: 'm-1',
    from: '2024-05-01T12:00:00.000Z',
    to: '2024-05-01T12:00:10.000Z',
    device: { cpuPercent: 12.5, memory: { usedBytes: 512, totalBytes: 1024 }, disk: { usedBytes: 10, totalBytes: 100 }, temperatureC: null, uptimeSeconds: 3600, network: { rxBytes: 1, txBytes: 2 } },
    containers: [{ service: 'iris', revision: 1, cpuPercent: 1.5, memoryBytes: 4096, memoryLimitBytes: null }],
    services: { iris: serviceInterval({ requests: 2, responses: { '2xx': 2, '3xx': 0, '4xx': 0, '5xx': 0 } }) },
    outbox: { dropped: { metrics: 0, capture: 0 }, queued: { metrics: 1, capture: 0 } },
    ...overrides,
  };
}

export function captureSample(overrides: Partial<CaptureSample> = {}): CaptureSample {
  return {
    ts: '2024-05-01T12:00:01.000Z',
    service: 'iris',
    revision: 1,
    models: [{ name: 'iris', version: 1 }],
    status: 200,
    latencyMs: 3.5,
    request: { json: { x: [1, 2] }, bytes: 12, truncated: false },
    response: { json: { y: 1 }, bytes: 7, truncated: false },
    ...overrides,
  };
}

export function capturesBatch(overrides: Partial<CapturesBatch> = {}): CapturesBatch {
  return { v: 1, kind: 'captures', id: 'c-1', samples: [captureSample()], ...overrides };
}
