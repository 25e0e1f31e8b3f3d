/**
 * `GET /metrics` in the Prometheus text format, for existing dashboards: the hub's own figures
 * (devices, broker, telemetry ingest, rollouts by phase), the fleet's per service since the hub
 * started (with the scoring code's own figures, `edgeml_custom_*`), and the replicas each device last reported per service. It needs an API key with the read scope, which Prometheus sends as
 * `Authorization: Bearer` (its `authorization` scrape setting).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { RolloutPhase } from '../../shared/api/rollouts.js';
import type { ServiceReplicaGauge } from '../fleet/device-directory.js';
import type { OutboxDrops, ServiceTotals } from '../telemetry/fleet-counters.js';
import { EXPOSITION_CONTENT_TYPE, histogramSamples, renderExposition, type MetricFamily } from '../telemetry/prometheus-text.js';

export interface HubFigures {
  version: string;
  uptimeSeconds: number;
  devicesEnrolled: number;
  devicesOnline: number;
  mqttConnectedClients: number;
  messagesReceived: number;
  messagesInvalidByChannel: Record<string, number>;
  messagesInvalidByDevice: Record<string, number>;
  batchesStored: number;
  batchesDuplicate: number;
  batchesInvalid: number;
  /** Metrics batches kept without their scoring-code figures, which broke the protocol (inbox stats). */
  customDropped?: number;
  outboxDropped: OutboxDrops;
  services: Map<string, ServiceTotals>;
  /** Each device's replica counts per service, as it last reported them. */
  serviceReplicas: readonly ServiceReplicaGauge[];
}

const one = (name: string, type: 'counter' | 'gauge', help: string, value: number): MetricFamily => ({ name, type, help, samples: [{ value }] });
const each = <T>(entries: Iterable<[string, T]>, label: string, value: (v: T) => number) => [...entries].map(([key, v]) => ({ labels: { [label]: key }, value: value(v) }));

export function hubMetricFamilies(f: HubFigures, rolloutsByPhase: Record<RolloutPhase, number>): MetricFamily[] {
  const services = [...f.services];
  const perService = (name: string, help: string, value: (t: ServiceTotals) => number): MetricFamily => ({ name, type: 'counter', help, samples: each(services, 'service', value) });
  return [
    { name: 'edgeml_hub_info', type: 'gauge', help: 'Always 1; the hub version in a label.', samples: [{ labels: { version: f.version }, value: 1 }] },
    one('edgeml_hub_uptime_seconds', 'gauge', 'Seconds since the hub started.', f.uptimeSeconds),
    one('edgeml_devices_enrolled', 'gauge', 'Devices enrolled and not revoked.', f.devicesEnrolled),
    one('edgeml_devices_online', 'gauge', 'Devices whose last status was online.', f.devicesOnline),
    {
      name: 'edgeml_rollouts',
      type: 'gauge',
      help: 'Rollouts the hub keeps, by phase (completed-with-failures: done, with failed devices).',
      samples: each(Object.entries(rolloutsByPhase), 'phase', (n) => n),
    },
    one('edgeml_mqtt_connected_clients', 'gauge', 'MQTT connections open on the broker.', f.mqttConnectedClients),
    one('edgeml_mqtt_messages_received_total', 'counter', 'Messages devices published to the hub since it started.', f.messagesReceived),
    { name: 'edgeml_mqtt_messages_invalid_total', type: 'counter', help: 'Messages dropped as invalid, by channel.', samples: each(Object.entries(f.messagesInvalidByChannel), 'channel', (n) => n) },
    { name: 'edgeml_device_messages_invalid_total', type: 'counter', help: 'Messages dropped as invalid, by device (only devices that sent one).', samples: each(Object.entries(f.messagesInvalidByDevice), 'device', (n) => n) },
    one('edgeml_telemetry_batches_stored_total', 'counter', 'Telemetry batches stored.', f.batchesStored),
    one('edgeml_telemetry_batches_duplicate_total', 'counter', 'Telemetry batches received again after they were stored, and not stored twice.', f.batchesDuplicate),
    one('edgeml_telemetry_batches_invalid_total', 'counter', 'Telemetry batches dropped as invalid.', f.batchesInvalid),
    ...(f.customDropped === undefined ? [] : [one('edgeml_telemetry_custom_dropped_total', 'counter', "Metrics batches kept without their scoring code's figures, which broke the protocol.", f.customDropped)]),
    {
      name: 'edgeml_device_outbox_dropped_batches',
      type: 'gauge',
      help: 'Telemetry batches the devices dropped from their full outboxes, by lane: the sum of what each device last reported.',
      samples: each(Object.entries(f.outboxDropped), 'lane', (n) => n),
    },
    perService('edgeml_service_requests_total', 'Scoring requests that reached the device gateways.', (t) => t.requests),
    {
      name: 'edgeml_service_responses_total',
      type: 'counter',
      help: 'Scoring answers by status class.',
      samples: services.flatMap(([service, t]) => Object.entries(t.responses).map(([cls, n]) => ({ labels: { service, class: cls }, value: n }))),
    },
    perService('edgeml_service_rejected_total', 'Scoring requests refused with 429: the queue was full.', (t) => t.rejected),
    perService('edgeml_service_queue_timeouts_total', 'Scoring requests answered 503: no slot within the queue timeout.', (t) => t.queueTimeouts),
    {
      name: 'edgeml_service_scaling_total',
      type: 'counter',
      help: "The devices' autoscaler decisions by kind: replicas added (up), removed (down), and additions the resource guard refused (held).",
      samples: services.flatMap(([service, t]) => Object.entries(t.scaling).map(([decision, n]) => ({ labels: { service, decision }, value: n }))),
    },
    {
      name: 'edgeml_service_replicas',
      type: 'gauge',
      help: 'Replicas of a service on a device as it last reported: desired (what its agent works toward) and ready (in its gateway rotation).',
      samples: f.serviceReplicas.flatMap((r) => [
        { labels: { service: r.service, device: r.device, state: 'desired' }, value: r.desired },
        { labels: { service: r.service, device: r.device, state: 'ready' }, value: r.ready },
      ]),
    },
    {
      name: 'edgeml_custom_total',
      type: 'counter',
      help: "Scoring code's own counters (metrics.count), summed over the fleet's replicas.",
      samples: services.flatMap(([service, t]) => Object.entries(t.custom?.counters ?? {}).map(([name, n]) => ({ labels: { service, name }, value: n }))),
    },
    {
      name: 'edgeml_custom_observation_count',
      type: 'counter',
      help: "Values scoring code observed (metrics.observe), by name.",
      samples: services.flatMap(([service, t]) => Object.entries(t.custom?.observations ?? {}).map(([name, o]) => ({ labels: { service, name }, value: o.count }))),
    },
    {
      name: 'edgeml_custom_observation_sum',
      type: 'counter',
      help: "The sum of the values scoring code observed (metrics.observe), by name: with the count, a mean per interval.",
      samples: services.flatMap(([service, t]) => Object.entries(t.custom?.observations ?? {}).map(([name, o]) => ({ labels: { service, name }, value: o.sum }))),
    },
    perService('edgeml_custom_left_out_total', "Custom metric names the hub did not track: past the per-service limit.", (t) => t.customLeftOut ?? 0),
    {
      name: 'edgeml_service_latency_seconds',
      type: 'histogram',
      help: 'Latency of the answers the scoring containers gave, from arrival at the gateway to the end of the answer.',
      samples: services.flatMap(([service, t]) => histogramSamples({ service }, t.latencyMs, 1000)),
    },
  ];
}

export const prometheusRoutes: FastifyPluginAsync<{ figures: () => HubFigures; rolloutsByPhase: () => Promise<Record<RolloutPhase, number>> }> = async (app, { figures, rolloutsByPhase }) => {
  app.get(
    '/metrics',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getMetrics',
        summary: 'Hub, broker and fleet figures in the Prometheus text format (0.0.4)', tags: ['hub'],
        response: { 200: { description: 'the exposition', content: { [EXPOSITION_CONTENT_TYPE]: { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => reply.type(EXPOSITION_CONTENT_TYPE).send(renderExposition(hubMetricFamilies(figures(), await rolloutsByPhase()))),
  );
};
