/**
 * The request figures every telemetry reader sums: requests, 5xx answers and the latency
 * histogram, over a service's stored metrics intervals. Histograms merge bucket by bucket
 * (shared/latency-histogram.ts), so any set of intervals (one device's, a fleet's, chosen devices
 * each from its own time) adds up the same way.
 */
import { emptyHistogram, mergeHistograms, type LatencyHistogram } from '../../shared/latency-histogram.js';
import type { MetricsBatch, ServiceIntervalMetrics } from '../../shared/protocol.js';
import type { StoredRecord } from './records.js';

export interface RequestTotals {
  requests: number;
  /** 5xx answers. */
  errors: number;
  latencyMs: LatencyHistogram;
}

export function noRequests(): RequestTotals {
  return { requests: 0, errors: 0, latencyMs: emptyHistogram() };
}

/** One interval's figures as totals. */
export function intervalRequests(m: ServiceIntervalMetrics): RequestTotals {
  return { requests: m.requests, errors: m.responses['5xx'], latencyMs: m.latencyMs };
}

export function addRequests(a: RequestTotals, b: RequestTotals): RequestTotals {
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, latencyMs: mergeHistograms(a.latencyMs, b.latencyMs) };
}

/** One service's interval in a stored metrics record, if the batch has figures for it. */
export function serviceIntervalOf(record: StoredRecord, service: string): ServiceIntervalMetrics | undefined {
  // Stored only after ingest checked them against the protocol and the fleet's histogram bounds.
  const { services } = record.data as MetricsBatch;
  // hasOwn: `constructor` is a valid service name and must not find Object's.
  return Object.hasOwn(services, service) ? services[service] : undefined;
}
