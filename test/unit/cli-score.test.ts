/**
 * `edgeml score` (cli/commands/score.ts): where the service key may be sent. Only to a device the
 * service targets and that reports it serving, and over plain http only to loopback unless allowed.
 */
import test, { type ExecutionContext } from 'ava';
import { checkServiceOnDevice, gatewayScoreUrl } from '../../cli/commands/score.js';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import type { ReportedService } from '../../shared/protocol.js';

const IMAGE = `127.0.0.1:5000/edgeml/iris@sha256:${'1'.repeat(64)}`;
const AT = '2026-11-24T12:00:00.000Z';
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };

function device(overrides: Partial<Device> = {}): Device {
  return {
    id: 'gw-1',
    status: 'online',
    labels: { site: 'lab' },
    offlineReason: null,
    onlineSince: AT,
    lastSeen: AT,
    facts: null,
    gateway: 'http://127.0.0.1:8090',
    enrolledAt: AT,
    enrolledBy: ACTOR,
    revokedAt: null,
    desiredGeneration: 1,
    observedGeneration: 1,
    phase: 'converged',
    services: [running()],
    ...overrides,
  };
}

function running(overrides: Partial<ReportedService> = {}): ReportedService {
  return { name: 'iris', revision: 1, image: IMAGE, phase: 'running', servingRevision: 1, progress: null, error: null, ...overrides };
}

const deployment = {
  service: 'iris',
  revision: 1,
  image: IMAGE,
  digest: `sha256:${'1'.repeat(64)}`,
  build: null,
  models: [],
  target: { site: 'lab' },
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
  scale: { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' },
  capture: { rate: 0, maxBodyBytes: 16384, redact: [] },
  keyId: 'abcdefgh',
  stableRevision: 1,
  revisions: [{ revision: 1, image: IMAGE, digest: `sha256:${'1'.repeat(64)}`, build: null, models: [], limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null }, createdAt: AT }],
  rollout: { id: 1, kind: 'create', revision: 1, strategy: 'all-at-once', phase: 'succeeded', devices: ['gw-1'] },
  createdAt: AT,
  createdBy: ACTOR,
  updatedAt: AT,
  deletedAt: null,
  deletedBy: null,
} satisfies Deployment;

function refusal(t: ExecutionContext, code: ErrorCode, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, code);
  return err?.message ?? '';
}

test('a targeted device that serves the service is scored', (t) => {
  t.notThrows(() => checkServiceOnDevice(device(), deployment));
  t.notThrows(() => checkServiceOnDevice(device({ services: [running({ revision: 2, phase: 'starting', servingRevision: 1 })] }), deployment), 'mid-rollout: the old revision serves');
});

test('refused: a device the service does not target, a revoked one, one that does not serve it', (t) => {
  const code = ErrorCodes.CLI_SERVICE_NOT_ON_DEVICE;
  // It reports iris running: what the device says does not make it a target.
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ labels: { site: 'field' } }), deployment)), /service iris does not target device gw-1 \(its selector site=lab does not match/);
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ status: 'revoked', revokedAt: AT }), deployment)), /device gw-1 is revoked/);
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ services: [] }), deployment)), /does not run service iris yet \(it has not reported iris\)/);
  t.regex(
    refusal(t, code, () => checkServiceOnDevice(device({ services: [running({ phase: 'pulling', servingRevision: null })] }), deployment)),
    /does not run service iris yet \(it reports iris pulling\)/,
  );
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ services: [running({ name: 'other' })] }), deployment)), /has not reported iris/);
});

test('the gateway: https anywhere, plain http on loopback, plain http elsewhere only when allowed', (t) => {
  const url = (gateway: string, allowInsecureHttp = false) => gatewayScoreUrl({ deviceId: 'gw-1', gateway, service: 'iris', allowInsecureHttp });
  for (const gateway of ['https://gw-1.example:8443', 'http://127.0.0.1:8090', 'http://127.9.8.7:8090', 'http://localhost:8090', 'http://[::1]:8090']) {
    t.is(url(gateway), `${gateway}/v1/services/iris/score`, gateway);
  }
  for (const gateway of ['http://192.0.2.10:8090', 'http://gw-1.example:8090', 'http://[2001:db8::1]:8090', 'http://127.0.0.1.example:8090']) {
    const message = refusal(t, ErrorCodes.CLI_GATEWAY_REFUSED, () => url(gateway));
    t.true(message.includes(`plain-http gateway (${gateway})`) && message.includes('--allow-insecure-http'), message);
    t.is(url(gateway, true), `${gateway}/v1/services/iris/score`, `${gateway} with --allow-insecure-http`);
  }
  t.regex(refusal(t, ErrorCodes.CLI_GATEWAY_REFUSED, () => url('http://a:b:c')), /not a URL: "http:\/\/a:b:c"/);
});
