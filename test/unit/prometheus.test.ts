/**
 * The Prometheus text format (hub/telemetry/prometheus-text.ts) and the families /metrics shows
 * (hub/http/prometheus.ts): escaping, cumulative buckets, no duplicate series.
 */
import test from 'ava';
import { hubMetricFamilies, type HubFigures } from '../../hub/http/prometheus.js';
import { histogramSamples, renderExposition } from '../../hub/telemetry/prometheus-text.js';
import { emptyHistogram, LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';

test('HELP and TYPE once per family, then its series; label values and help escaped', (t) => {
  const text = renderExposition([
    { name: 'x_total', type: 'counter', help: 'a \\ back\nslash', samples: [{ labels: { device: 'a"b\\c\nd' }, value: 3 }, { labels: { device: 'plain' }, value: 0.5 }] },
    { name: 'y', type: 'gauge', help: 'empty family', samples: [] },
    { name: 'z', type: 'gauge', help: 'specials', samples: [{ labels: { k: 'nan' }, value: NaN }, { labels: { k: 'inf' }, value: Infinity }] },
  ]);
  t.is(
    text,
    [
      '# HELP x_total a \\\\ back\\nslash',
      '# TYPE x_total counter',
      'x_total{device="a\\"b\\\\c\\nd"} 3',
      'x_total{device="plain"} 0.5',
      '# HELP y empty family',
      '# TYPE y gauge',
      '# HELP z specials',
      '# TYPE z gauge',
      'z{k="nan"} NaN',
      'z{k="inf"} +Inf',
      '',
    ].join('\n'),
  );
});

test('a duplicate series, a family twice, or a bad name is refused rather than rendered', (t) => {
  t.throws(() => renderExposition([{ name: 'a', type: 'gauge', help: 'h', samples: [{ labels: { x: '1' }, value: 1 }, { labels: { x: '1' }, value: 2 }] }]), { message: /duplicate/ });
  t.throws(() => renderExposition([{ name: 'a', type: 'gauge', help: 'h', samples: [] }, { name: 'a', type: 'gauge', help: 'h', samples: [] }]), { message: /twice/ });
  t.throws(() => renderExposition([{ name: 'a-b', type: 'gauge', help: 'h', samples: [] }]), { message: /metric name/ });
  t.throws(() => renderExposition([{ name: 'a', type: 'gauge', help: 'h', samples: [{ labels: { 'bad-label': 'v' }, value: 1 }] }]), { message: /label name/ });
});

test('a latency histogram becomes cumulative le buckets in seconds, ending with +Inf, then _sum and _count', (t) => {
  const h = { ...emptyHistogram(), counts: [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4], sumMs: 1500 };
  const samples = histogramSamples({ service: 'iris' }, h, 1000);
  const buckets = samples.filter((s) => s.suffix === '_bucket');
  t.deepEqual(buckets.map((s) => s.labels?.le), [...LATENCY_BOUNDS_MS.map((b) => String(b / 1000)), '+Inf']);
  t.deepEqual(buckets.map((s) => s.labels?.le).slice(0, 3), ['0.005', '0.01', '0.025']);
  t.deepEqual(buckets.map((s) => s.value), [1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 6, 10]);
  t.deepEqual(samples.slice(-2), [
    { suffix: '_sum', labels: { service: 'iris' }, value: 1.5 },
    { suffix: '_count', labels: { service: 'iris' }, value: 10 },
  ]);
});

function sampleFigures(): HubFigures {
  return {
    version: '0.1.0',
    uptimeSeconds: 12.5,
    devicesEnrolled: 2,
    devicesOnline: 1,
    mqttConnectedClients: 1,
    messagesReceived: 10,
    messagesInvalidByChannel: { reported: 0, telemetry: 2, status: 0, 'cmd/ack': 0 },
    messagesInvalidByDevice: { 'gw-2': 2 },
    batchesStored: 7,
    batchesDuplicate: 1,
    batchesInvalid: 2,
    outboxDropped: { metrics: 3, capture: 0 },
    services: new Map([
      [
        'iris',
        {
          requests: 5,
          responses: { '2xx': 4, '3xx': 0, '4xx': 1, '5xx': 0 },
          rejected: 1,
          queueTimeouts: 0,
          latencyMs: { ...emptyHistogram(), counts: [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sumMs: 8 },
          scaling: { up: 2, down: 1, held: 3 },
        },
      ],
    ]),
    serviceReplicas: [
      { device: 'gw-1', service: 'iris', desired: 3, ready: 2 },
      { device: 'gw-2', service: 'iris', desired: 1, ready: 1 },
    ],
  };
}

test('/metrics families: hub, broker, ingest and per-service figures', (t) => {
  const rollouts = { running: 1, paused: 0, succeeded: 4, 'completed-with-failures': 2, aborted: 1, superseded: 0 };
  const text = renderExposition(hubMetricFamilies(sampleFigures(), rollouts));
  for (const line of [
    'edgeml_hub_info{version="0.1.0"} 1',
    'edgeml_devices_enrolled 2',
    'edgeml_rollouts{phase="completed-with-failures"} 2',
    'edgeml_rollouts{phase="superseded"} 0',
    'edgeml_mqtt_messages_invalid_total{channel="telemetry"} 2',
    'edgeml_device_messages_invalid_total{device="gw-2"} 2',
    'edgeml_telemetry_batches_stored_total 7',
    'edgeml_telemetry_batches_duplicate_total 1',
    'edgeml_device_outbox_dropped_batches{lane="metrics"} 3',
    'edgeml_service_requests_total{service="iris"} 5',
    'edgeml_service_responses_total{service="iris",class="4xx"} 1',
    'edgeml_service_latency_seconds_bucket{service="iris",le="0.005"} 4',
    'edgeml_service_latency_seconds_bucket{service="iris",le="+Inf"} 4',
    'edgeml_service_latency_seconds_sum{service="iris"} 0.008',
    'edgeml_service_latency_seconds_count{service="iris"} 4',
    'edgeml_service_scaling_total{service="iris",decision="up"} 2',
    'edgeml_service_scaling_total{service="iris",decision="down"} 1',
    'edgeml_service_scaling_total{service="iris",decision="held"} 3',
  ]) {
    t.true(text.split('\n').includes(line), line);
  }
});

test('/metrics replicas: a desired and a ready gauge per device and service, as the devices reported', (t) => {
  const rollouts = { running: 0, paused: 0, succeeded: 0, 'completed-with-failures': 0, aborted: 0, superseded: 0 };
  const text = renderExposition(hubMetricFamilies(sampleFigures(), rollouts));
  const family = text.split('\n').filter((l) => l.includes('edgeml_service_replicas'));
  t.deepEqual(family, [
    '# HELP edgeml_service_replicas Replicas of a service on a device as it last reported: desired (what its agent works toward) and ready (in its gateway rotation).',
    '# TYPE edgeml_service_replicas gauge',
    'edgeml_service_replicas{service="iris",device="gw-1",state="desired"} 3',
    'edgeml_service_replicas{service="iris",device="gw-1",state="ready"} 2',
    'edgeml_service_replicas{service="iris",device="gw-2",state="desired"} 1',
    'edgeml_service_replicas{service="iris",device="gw-2",state="ready"} 1',
  ]);
  const none = renderExposition(hubMetricFamilies({ ...sampleFigures(), serviceReplicas: [] }, rollouts));
  t.true(none.includes('# TYPE edgeml_service_replicas gauge\n'), 'the family is declared even before any device reports replicas');
  t.false(none.includes('edgeml_service_replicas{'));
});
