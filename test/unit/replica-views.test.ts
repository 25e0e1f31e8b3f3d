/**
 * The CLI's views of replicas (cli/commands/replica-views.ts and the telemetry table): `device show`
 * lines, `service show` rows from the devices list, and the telemetry columns, for agents that report
 * replicas and for older ones that do not.
 */
import test from 'ava';
import type { HubClient } from '../../client/hub-client.js';
import { formatReplicas, fetchServiceReplicas, renderDeviceReplicas, renderServiceReplicas, serviceReplicaRows } from '../../cli/commands/replica-views.js';
import { formatScaling, renderServiceTelemetry } from '../../cli/commands/telemetry.js';
import type { Device } from '../../shared/api/devices.js';
import type { ServiceFigures, ServiceTelemetry } from '../../shared/api/telemetry.js';
import type { ReportedService } from '../../shared/protocol.js';

const CAPACITY = 'capacity: a replica needs 512 MiB, 300 MiB free';

function service(name: string, extra: Partial<ReportedService> = {}): ReportedService {
  return { name, revision: 2, image: `r/${name}@sha256:${'a'.repeat(64)}`, phase: 'running', servingRevision: 2, progress: null, error: null, ...extra };
}

const scaled = service('iris', {
  replicas: { desired: 3, ready: 2, capacity: CAPACITY },
  lastScale: { at: '2026-12-07T03:00:05.000Z', from: 1, to: 3, reason: 'load 2.4 per replica > 0.7 × maxConcurrent 1 over 5s' },
});

type DeviceRow = Pick<Device, 'id' | 'status' | 'services'>;
const devices: DeviceRow[] = [
  { id: 'gw-2', status: 'online', services: [service('iris')] },
  { id: 'gw-1', status: 'online', services: [service('wine', { replicas: { desired: 1, ready: 1 } }), scaled] },
  { id: 'gw-3', status: 'offline', services: [service('wine', { servingRevision: null, phase: 'pulling', replicas: { desired: 1, ready: 0 } })] },
];

test('device show: ready/desired per service, the capacity reason and the latest decision; nothing for an older agent', (t) => {
  t.is(formatReplicas({ desired: 3, ready: 2 }), '2/3');
  t.is(
    renderDeviceReplicas(devices[1]!.services),
    [
      'replicas:',
      '  wine: replicas 1/1',
      `  iris: replicas 2/3, ${CAPACITY}`,
      '    last scaled 1 → 3 at 2026-12-07 03:00Z: load 2.4 per replica > 0.7 × maxConcurrent 1 over 5s',
      '',
    ].join('\n'),
  );
  t.is(renderDeviceReplicas(devices[0]!.services), '', 'an agent older than replicas adds no section');
});

test('service show: the rows of the devices that report the service, by device; null where an older agent says nothing', async (t) => {
  const iris = serviceReplicaRows('iris', devices);
  t.deepEqual(iris, [
    { device: 'gw-1', deviceStatus: 'online', revision: 2, replicas: { desired: 3, ready: 2 }, capacity: CAPACITY },
    { device: 'gw-2', deviceStatus: 'online', revision: 2, replicas: null, capacity: null },
  ]);
  t.deepEqual(serviceReplicaRows('wine', devices).map((r) => [r.device, r.revision, r.replicas]), [
    ['gw-1', 2, { desired: 1, ready: 1 }],
    ['gw-3', null, { desired: 1, ready: 0 }],
  ]);
  t.is(
    renderServiceReplicas(iris),
    ['DEVICE  STATUS  REVISION  REPLICAS  CAPACITY', `gw-1    online  2         2/3       ${CAPACITY}`, 'gw-2    online  2         -         -', ''].join('\n'),
  );
  t.is(renderServiceReplicas(serviceReplicaRows('rose', devices)), '(no device reports this service)\n');

  const asked: string[] = [];
  const client = {
    call: (async (operation: string) => {
      asked.push(operation);
      return { devices };
    }) as unknown as HubClient['call'],
  };
  t.deepEqual(await fetchServiceReplicas(client, 'iris'), iris);
  t.deepEqual(asked, ['listDevices']);
});

function figures(extra: Partial<ServiceFigures>): ServiceFigures {
  return { requests: 10, errors: 0, rejected: 0, queueTimeouts: 0, requestsPerSecond: 1, errorRate: 0, p50: 5, p95: 9, p99: 9, atLeast: [], replicas: null, scaling: { up: 0, down: 0, held: 0 }, ...extra };
}

test('telemetry SERVICE: ready replicas and scaling decisions per device and for the fleet; `-` where none were counted', (t) => {
  t.is(formatScaling({ up: 0, down: 0, held: 0 }), '-');
  t.is(formatScaling({ up: 2, down: 1, held: 0 }), '+2 -1');
  t.is(formatScaling({ up: 0, down: 0, held: 3 }), '+0 -0 (3 held)');
  const report: ServiceTelemetry = {
    service: 'iris',
    since: '2026-12-07T02:00:00.000Z',
    until: '2026-12-07T03:00:00.000Z',
    ...figures({ replicas: 3, scaling: { up: 2, down: 1, held: 1 } }),
    devices: [
      { device: 'gw-1', ...figures({ replicas: 3, scaling: { up: 2, down: 1, held: 1 } }) },
      { device: 'gw-2', ...figures({}) },
    ],
  };
  const text = renderServiceTelemetry(report);
  t.regex(text, /^replicas: +3 ready at the latest count, scaled \+2 -1 \(1 held\)$/m);
  t.regex(text, /^DEVICE .* REPLICAS +SCALED$/m);
  t.regex(text, /^gw-1 .* 3 +\+2 -1 \(1 held\)$/m);
  t.regex(text, /^gw-2 .* - +-$/m);
  t.notRegex(renderServiceTelemetry({ ...report, replicas: null, devices: [] }), /^replicas:/m, 'no fleet line when no device counted replicas');
});
