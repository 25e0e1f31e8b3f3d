/** The agent's reconcile planner (agent/reconcile/plan.ts): every state a crash can leave has one answer. */
import test from 'ava';
import { plan } from '../../agent/reconcile/plan.js';
import type { ManagedContainer } from '../../agent/runtime/container-runtime.js';
import type { DesiredService } from '../../shared/protocol.js';

const image = (n: number) => `reg/iris@sha256:${String(n).repeat(64).slice(0, 64)}`;
const svc = (name: string, revision: number): DesiredService => ({
  name,
  revision,
  image: image(revision),
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
  keyHash: 'a'.repeat(64),
  models: [],
});
let seq = 0;
const box = (service: string, revision: number, running = true, created = ++seq): ManagedContainer => ({
  id: `c${created}`,
  name: `edgeml-dev-${service}-r${revision}`,
  service,
  revision,
  image: image(revision),
  port: 40000 + created,
  running,
  created,
});
const ids = (cs: ManagedContainer[]) => cs.map((c) => c.id).sort();

const promoted = (...cs: ManagedContainer[]) => new Set(cs.map((c) => c.id));

test('nothing desired, nothing running: nothing to do', (t) => {
  t.deepEqual(plan([], [], new Set()), { keep: [], rollout: [], remove: [] });
});

test('a new service is rolled out with no previous container', (t) => {
  t.deepEqual(plan([svc('iris', 1)], [], new Set()), { keep: [], rollout: [{ service: svc('iris', 1), previous: null }], remove: [] });
});

test('the desired revision serving: keep it', (t) => {
  const c = box('iris', 2);
  t.deepEqual(plan([svc('iris', 2)], [c], promoted(c)), { keep: [{ service: svc('iris', 2), container: c }], rollout: [], remove: [] });
});

test('a new revision: the old container keeps serving until the switch', (t) => {
  const old = box('iris', 1);
  const p = plan([svc('iris', 2)], [old], promoted(old));
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: old }]);
  t.deepEqual(p.remove, []);
});

test('after a crash between the switch and the removal: keep the promoted new one, remove the old', (t) => {
  const old = box('iris', 1);
  const fresh = box('iris', 2);
  const p = plan([svc('iris', 2)], [old, fresh], promoted(fresh));
  t.deepEqual(p.keep, [{ service: svc('iris', 2), container: fresh }]);
  t.deepEqual(ids(p.remove), [old.id]);
});

test('after a crash during the health check: the new container runs but was never promoted, so the old one keeps serving and the rollout is redone', (t) => {
  const old = box('iris', 1);
  const unproven = box('iris', 2);
  const p = plan([svc('iris', 2)], [old, unproven], promoted(old));
  t.deepEqual(p.keep, []);
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: old }]);
  t.deepEqual(ids(p.remove), [unproven.id]);
});

test('duplicates of the desired revision: only the promoted one is kept', (t) => {
  const a = box('iris', 2);
  const b = box('iris', 2);
  const p = plan([svc('iris', 2)], [a, b], promoted(a));
  t.is(p.keep[0]?.container, a);
  t.deepEqual(ids(p.remove), [b.id]);
});

test('a new container that never started (crash after create) is removed and the rollout redone', (t) => {
  const old = box('iris', 1);
  const stuck = box('iris', 2, false);
  const p = plan([svc('iris', 2)], [old, stuck], promoted(old));
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: old }]);
  t.deepEqual(ids(p.remove), [stuck.id]);
});

test('a first container that was never promoted is removed and the rollout redone from nothing', (t) => {
  const unproven = box('iris', 1);
  const p = plan([svc('iris', 1)], [unproven], new Set());
  t.deepEqual(p.rollout, [{ service: svc('iris', 1), previous: null }]);
  t.deepEqual(ids(p.remove), [unproven.id]);
});

test('a promoted container that stopped cannot serve: it is removed and the service rolled out again', (t) => {
  const dead = box('iris', 1, false);
  const p = plan([svc('iris', 1)], [dead], promoted(dead));
  t.deepEqual(p.rollout, [{ service: svc('iris', 1), previous: null }]);
  t.deepEqual(ids(p.remove), [dead.id]);
});

test('a service no longer desired is removed; others are untouched', (t) => {
  const gone = box('counter', 3);
  const kept = box('iris', 1);
  const p = plan([svc('iris', 1)], [gone, kept], promoted(gone, kept));
  t.deepEqual(ids(p.remove), [gone.id]);
  t.is(p.keep[0]?.container, kept);
});

test('a container at the desired revision but with another image is not trusted: roll out again', (t) => {
  const odd = { ...box('iris', 2), image: 'reg/other@sha256:' + 'f'.repeat(64) };
  const p = plan([svc('iris', 2)], [odd], promoted(odd));
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: odd }]);
});
