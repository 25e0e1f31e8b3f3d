/** The agent's reconcile planner (agent/reconcile/plan.ts): every state a crash can leave has one answer, one wave at a time. */
import test from 'ava';
import { laneOf, plan, type Current, type PlanContext, type Step } from '../../agent/reconcile/plan.js';
import { routeOf } from '../../agent/reconcile/routes.js';
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

function state(containers: ManagedContainer[], promoted: ManagedContainer[] = [], o: Partial<Current> = {}): Current {
  return { containers, promoted: new Set(promoted.map((c) => c.id)), localImages: new Set(), unusedImages: [], routes: [], ...o };
}
const none: PlanContext = { launched: new Map(), retired: new Set(), pulled: new Set(), blocked: new Set(), attempted: new Set(), keepImages: new Set(), replicas: new Map(), ejected: new Set() };
const ctx = (o: Partial<PlanContext> = {}): PlanContext => ({ ...none, ...o });

/** Container ids the wave removes (never served, or unwanted). */
const removed = (steps: Step[]) => steps.flatMap((s) => (s.kind === 'remove' ? [s.container.id] : [])).sort();
/** The one rollout step of the wave, if any. */
const rolloutStep = (steps: Step[]) => steps.find((s) => s.kind === 'pull' || s.kind === 'create' || s.kind === 'start' || s.kind === 'waitHealthy' || s.kind === 'switch');
const routedTo = (steps: Step[], service: string) => steps.flatMap((s) => (s.kind === 'route' && s.service === service ? [s.to] : []));

test('nothing desired, nothing running: nothing to do', (t) => {
  t.deepEqual(plan(state([]), [], none), []);
});

test('a new service is rolled out with no previous container: a pull, or a create when the image is here', (t) => {
  t.deepEqual(plan(state([]), [svc('iris', 1)], none), [{ kind: 'pull', rollout: { service: svc('iris', 1), previous: [] } }]);
  t.deepEqual(plan(state([], [], { localImages: new Set([image(1)]) }), [svc('iris', 1)], none), [{ kind: 'create', rollout: { service: svc('iris', 1), previous: [] } }]);
  t.deepEqual(plan(state([]), [svc('iris', 1)], ctx({ pulled: new Set([image(1)]) })), [{ kind: 'create', rollout: { service: svc('iris', 1), previous: [] } }], 'pulled in this pass');
});

test('the desired revision serving: route to it once, then nothing to do (converged)', (t) => {
  const c = box('iris', 2);
  t.deepEqual(plan(state([c], [c]), [svc('iris', 2)], none), [{ kind: 'route', service: 'iris', to: { service: svc('iris', 2), replicas: [{ container: c.id, port: c.port }] }}]);
  t.deepEqual(plan(state([c], [c], { routes: [routeOf(svc('iris', 2), [{ container: c.id, port: c.port }])] }), [svc('iris', 2)], none), []);
});

test('a setting outside the revision (capture) changes the route only', (t) => {
  const c = box('iris', 2);
  const capture = { rate: 0.5, maxBodyBytes: 1024, redact: [] };
  const steps = plan(state([c], [c], { routes: [routeOf(svc('iris', 2), [{ container: c.id, port: c.port }])] }), [{ ...svc('iris', 2), capture }], none);
  t.deepEqual(steps, [{ kind: 'route', service: 'iris', to: { service: { ...svc('iris', 2), capture }, replicas: [{ container: c.id, port: c.port }] }}]);
});

test('a new revision: the old container keeps serving until the switch', (t) => {
  const old = box('iris', 1);
  const p = plan(state([old], [old], { routes: [routeOf(svc('iris', 1), [{ container: old.id, port: old.port }])] }), [svc('iris', 2)], none);
  t.deepEqual(rolloutStep(p), { kind: 'pull', rollout: { service: svc('iris', 2), previous: [old] } });
  t.deepEqual(removed(p), []);
  t.false(p.some((s) => s.kind === 'drain'));
});

test('a rollout walks its launched replica through start, /health and the switch; the replaced one is drained after', (t) => {
  const old = box('iris', 1);
  const fresh = box('iris', 2, false);
  const rollout = { service: svc('iris', 2), previous: [old] };
  const at = (stage: 'created' | 'started' | 'healthy') => rolloutStep(plan(state([old, fresh], [old]), [svc('iris', 2)], ctx({ launched: new Map([[fresh.id, stage]]) })));
  t.deepEqual(at('created'), { kind: 'start', rollout, container: fresh });
  t.deepEqual(at('started'), { kind: 'waitHealthy', rollout, container: fresh });
  t.deepEqual(at('healthy'), { kind: 'switch', rollout, containers: [fresh] });
  const running = { ...fresh, running: true };
  const after = plan(state([old, running], [running], { routes: [routeOf(svc('iris', 2), [{ container: running.id, port: running.port }])] }), [svc('iris', 2)], ctx({ retired: new Set([old.id]) }));
  t.deepEqual(after, [{ kind: 'drain', container: old }]);
});

test('the old container serves on with the models its route had, until the switch', (t) => {
  const old = box('iris', 1);
  const models = [{ name: 'iris', version: 1, digest: `sha256:${'b'.repeat(64)}` }] as DesiredService['models'];
  const capture = { rate: 1, maxBodyBytes: 1024, redact: [] };
  const p = plan(state([old], [old], { routes: [routeOf({ ...svc('iris', 1), models }, [{ container: old.id, port: old.port }])] }), [{ ...svc('iris', 2), capture }], none);
  t.deepEqual(routedTo(p, 'iris'), [{ service: { ...svc('iris', 2), capture, revision: 1, image: image(1), models }, replicas: [{ container: old.id, port: old.port }] }]);
  const afterRestart = plan(state([old], [old]), [svc('iris', 2)], none);
  t.deepEqual(routedTo(afterRestart, 'iris')[0]?.service.models, [], 'after a restart the agent does not know them');
});

test('after a crash between the switch and the removal: keep the promoted new one, remove the old', (t) => {
  const old = box('iris', 1);
  const fresh = box('iris', 2);
  const p = plan(state([old, fresh], [fresh], { routes: [routeOf(svc('iris', 2), [{ container: fresh.id, port: fresh.port }])] }), [svc('iris', 2)], none);
  t.deepEqual(removed(p), [old.id]);
  t.is(rolloutStep(p), undefined);
});

test('after a crash during the health check: the new container runs but was never promoted, so the old one keeps serving and the rollout is redone', (t) => {
  const old = box('iris', 1);
  const unproven = box('iris', 2);
  const p = plan(state([old, unproven], [old], { localImages: new Set([image(2)]) }), [svc('iris', 2)], none);
  t.deepEqual(rolloutStep(p), { kind: 'create', rollout: { service: svc('iris', 2), previous: [old] } });
  t.deepEqual(removed(p), [unproven.id]);
});

test('duplicates of the desired revision: only the promoted one is kept', (t) => {
  const a = box('iris', 2);
  const b = box('iris', 2);
  const p = plan(state([a, b], [a]), [svc('iris', 2)], none);
  t.deepEqual(routedTo(p, 'iris'), [{ service: svc('iris', 2), replicas: [{ container: a.id, port: a.port }] }]);
  t.deepEqual(removed(p), [b.id]);
  t.is(rolloutStep(p), undefined);
});

test('a new container that never started (crash after create) is removed and the rollout redone', (t) => {
  const old = box('iris', 1);
  const stuck = box('iris', 2, false);
  const p = plan(state([old, stuck], [old]), [svc('iris', 2)], none);
  t.deepEqual(rolloutStep(p), { kind: 'pull', rollout: { service: svc('iris', 2), previous: [old] } });
  t.deepEqual(removed(p), [stuck.id]);
});

test('a first container that was never promoted is removed and the rollout redone from nothing', (t) => {
  const unproven = box('iris', 1);
  const p = plan(state([unproven]), [svc('iris', 1)], none);
  t.deepEqual(rolloutStep(p), { kind: 'pull', rollout: { service: svc('iris', 1), previous: [] } });
  t.deepEqual(removed(p), [unproven.id]);
});

test('a promoted container that stopped cannot serve: it is removed and the service rolled out again', (t) => {
  const dead = box('iris', 1, false);
  const p = plan(state([dead], [dead]), [svc('iris', 1)], none);
  t.deepEqual(rolloutStep(p), { kind: 'pull', rollout: { service: svc('iris', 1), previous: [] } });
  t.deepEqual(removed(p), [dead.id]);
});

test('a service no longer desired is removed and its route dropped; others are untouched', (t) => {
  const gone = box('counter', 3);
  const kept = box('iris', 1);
  const routes = [routeOf(svc('counter', 3), [{ container: gone.id, port: gone.port }]), routeOf(svc('iris', 1), [{ container: kept.id, port: kept.port }])];
  const p = plan(state([gone, kept], [gone, kept], { routes }), [svc('iris', 1)], none);
  t.deepEqual(p, [
    { kind: 'remove', container: gone },
    { kind: 'route', service: 'counter', to: null},
  ]);
});

test('a container at the desired revision but with another image is not trusted: roll out again', (t) => {
  const odd = { ...box('iris', 2), image: 'reg/other@sha256:' + 'f'.repeat(64) };
  const p = plan(state([odd], [odd]), [svc('iris', 2)], none);
  t.deepEqual(rolloutStep(p), { kind: 'pull', rollout: { service: svc('iris', 2), previous: [odd] } });
});

test('services roll out independently: each plans its own launch; a blocked one (backoff, rejected) keeps its route to the previous revision and holds up no other', (t) => {
  const old = box('iris', 1);
  const both = [svc('iris', 2), svc('counter', 1)];
  const p = plan(state([old], [old]), both, none);
  t.deepEqual(p.filter((s) => s.kind === 'pull'), [
    { kind: 'pull', rollout: { service: svc('iris', 2), previous: [old] } },
    { kind: 'pull', rollout: { service: svc('counter', 1), previous: [] } },
  ]);
  t.deepEqual([...new Set(p.map(laneOf))].sort(), ['counter', 'iris']);
  const blocked = plan(state([old], [old]), both, ctx({ blocked: new Set([`iris@2@${image(2)}`]) }));
  t.deepEqual(rolloutStep(blocked), { kind: 'pull', rollout: { service: svc('counter', 1), previous: [] } });
  t.deepEqual(routedTo(blocked, 'iris').map((r) => r?.service.revision), [1]);
});

test('images no service keeps are pruned once no container uses them, unless a target or the newest desired state wants them', (t) => {
  const c = box('iris', 2);
  const base = { routes: [routeOf(svc('iris', 2), [{ container: c.id, port: c.port }])], unusedImages: [image(1), image(2), image(3), image(4)] };
  const inUse = { ...box('iris', 1, false), id: 'other' };
  const p = plan(state([c], [c], base), [svc('iris', 2)], ctx({ keepImages: new Set([image(4)]) }));
  t.deepEqual(p, [{ kind: 'prune', image: image(1) }, { kind: 'prune', image: image(3) }]);
  t.false(plan(state([c, inUse], [c], base), [svc('iris', 2)], none).some((s) => s.kind === 'prune' && s.image === image(1)), 'used by a container');
});

test('a removal or pruning tried in this pass is not planned again before the next pass', (t) => {
  const gone = box('counter', 3);
  const p = plan(state([gone], [], { unusedImages: [image(9)] }), [], ctx({ attempted: new Set([`container:${gone.id}`, `image:${image(9)}`]) }));
  t.deepEqual(p, []);
});
