/** The agent's reconcile planner (agent/reconcile/plan.ts): every state a crash can leave has one answer. */
import test from 'ava';
import { plan } from '../../agent/reconcile/plan.js';
import type { ManagedContainer } from '../../agent/runtime/docker.js';
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

test('nothing desired, nothing running: nothing to do', (t) => {
  t.deepEqual(plan([], []), { keep: [], rollout: [], remove: [] });
});

test('a new service is rolled out with no previous container', (t) => {
  t.deepEqual(plan([svc('iris', 1)], []), { keep: [], rollout: [{ service: svc('iris', 1), previous: null }], remove: [] });
});

test('the desired revision running: keep it', (t) => {
  const c = box('iris', 2);
  t.deepEqual(plan([svc('iris', 2)], [c]), { keep: [{ service: svc('iris', 2), container: c }], rollout: [], remove: [] });
});

test('a new revision: the old container keeps serving until the switch', (t) => {
  const old = box('iris', 1);
  const p = plan([svc('iris', 2)], [old]);
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: old }]);
  t.deepEqual(p.remove, []);
});

test('after a crash mid-switch, both revisions run: keep the new one, remove the old', (t) => {
  const old = box('iris', 1);
  const fresh = box('iris', 2);
  const p = plan([svc('iris', 2)], [old, fresh]);
  t.deepEqual(p.keep, [{ service: svc('iris', 2), container: fresh }]);
  t.deepEqual(ids(p.remove), [old.id]);
});

test('duplicates of the desired revision: the newest is kept, the others removed', (t) => {
  const a = box('iris', 2);
  const b = box('iris', 2);
  const p = plan([svc('iris', 2)], [a, b]);
  t.is(p.keep[0]?.container, b);
  t.deepEqual(ids(p.remove), [a.id]);
});

test('a new container that never started (crash after create) is removed and the rollout redone', (t) => {
  const old = box('iris', 1);
  const stuck = box('iris', 2, false);
  const p = plan([svc('iris', 2)], [old, stuck]);
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: old }]);
  t.deepEqual(ids(p.remove), [stuck.id]);
});

test('a service no longer desired is removed; others are untouched', (t) => {
  const gone = box('counter', 3);
  const kept = box('iris', 1);
  const p = plan([svc('iris', 1)], [gone, kept]);
  t.deepEqual(ids(p.remove), [gone.id]);
  t.is(p.keep[0]?.container, kept);
});

test('a container at the desired revision but with another image is not trusted: roll out again', (t) => {
  const odd = { ...box('iris', 2), image: 'reg/other@sha256:' + 'f'.repeat(64) };
  const p = plan([svc('iris', 2)], [odd]);
  t.deepEqual(p.rollout, [{ service: svc('iris', 2), previous: odd }]);
});
