/** The reconcile planner (agent/reconcile/plan.ts) with replicas: scaling, blue/green of a set, lost replicas, limits in place. */
import test from 'ava';
import { laneOf, plan, type Current, type LaunchStage, type PlanContext, type Step } from '../../agent/reconcile/plan.js';
import { routeOf } from '../../agent/reconcile/routes.js';
import type { ManagedContainer } from '../../agent/runtime/container-runtime.js';
import type { DesiredService } from '../../shared/protocol.js';

const MiB = 2 ** 20;
const image = (n: number) => `reg/iris@sha256:${String(n).repeat(64).slice(0, 64)}`;
const svc = (name: string, revision: number, o: Partial<DesiredService['limits']> = {}): DesiredService => ({
  name,
  revision,
  image: image(revision),
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null, ...o },
  keyHash: 'a'.repeat(64),
  models: [],
  scale: { minReplicas: 1, maxReplicas: 3, targetUtilization: 0.7, scaleUpWindowMs: 5000, scaleDownWindowMs: 60_000 },
});
let seq = 0;
const box = (service: string, revision: number, o: Partial<ManagedContainer> = {}): ManagedContainer => {
  const created = ++seq;
  return { id: `c${created}`, name: `edgeml-dev-${service}-r${revision}-${created}`, service, revision, image: image(revision), port: 40000 + created, running: true, created, limits: { memoryBytes: null, cpus: null }, ...o };
};
const replicas = (cs: ManagedContainer[]) => cs.map((c) => ({ container: c.id, port: c.port }));
/** Containers the record trusts, with the route to them. */
function serving(service: DesiredService, cs: ManagedContainer[], others: ManagedContainer[] = [], o: Partial<Current> = {}): Current {
  return { containers: [...cs, ...others], promoted: new Set(cs.map((c) => c.id)), localImages: new Set(), unusedImages: [], routes: [routeOf(service, replicas(cs))], ...o };
}
const ctx = (o: Partial<PlanContext> = {}): PlanContext => ({ launched: new Map(), retired: new Set(), pulled: new Set(), blocked: new Set(), attempted: new Set(), keepImages: new Set(), replicas: new Map(), ejected: new Set(), ...o });
const want = (n: number, name = 'iris') => new Map([[name, n]]);
const stages = (cs: ManagedContainer[], stage: LaunchStage) => new Map(cs.map((c) => [c.id, stage] as const));
const kinds = (steps: Step[]) => steps.map((s) => s.kind).sort();

test('scale up from 1 to 3: both missing replicas are launched in the same wave, walked through start and /health together, and join the route together after the first', (t) => {
  const s = svc('iris', 1);
  const first = box('iris', 1);
  const wave1 = plan(serving(s, [first]), [s], ctx({ replicas: want(3) }));
  t.deepEqual(wave1, [
    { kind: 'create', rollout: { service: s, previous: [first] } },
    { kind: 'create', rollout: { service: s, previous: [first] } },
  ]);
  const fresh = [box('iris', 1), box('iris', 1)];
  const at = (stage: LaunchStage) => plan(serving(s, [first], fresh), [s], ctx({ replicas: want(3), launched: stages(fresh, stage) }));
  t.deepEqual(kinds(at('created')), ['start', 'start']);
  t.deepEqual(kinds(at('started')), ['waitHealthy', 'waitHealthy']);
  t.deepEqual(at('healthy'), [{ kind: 'join', rollout: { service: s, previous: [first] }, containers: fresh, replicas: replicas([first, ...fresh]) }]);
  t.deepEqual(plan(serving(s, [first, ...fresh]), [s], ctx({ replicas: want(3) })), [], 'three serve: converged');
});

test('scale down from 3 to 1: one replica at a time, out of the route first, drained, then the next', (t) => {
  const s = svc('iris', 1);
  const [a, b, c] = [box('iris', 1), box('iris', 1), box('iris', 1)];
  const wave1 = plan(serving(s, [a!, b!, c!]), [s], ctx({ replicas: want(1) }));
  t.deepEqual(wave1, [{ kind: 'leave', service: s, container: c, replicas: replicas([a!, b!]) }]);
  // c left: untrusted, out of the route, retired. It is drained, and no other leaves meanwhile.
  const afterLeave = serving(s, [a!, b!], [c!]);
  t.deepEqual(plan(afterLeave, [s], ctx({ replicas: want(1), retired: new Set([c!.id]) })), [{ kind: 'drain', container: c }]);
  t.deepEqual(plan(serving(s, [a!, b!]), [s], ctx({ replicas: want(1), retired: new Set([c!.id]) })), [{ kind: 'leave', service: s, container: b, replicas: replicas([a!]) }]);
});

test('a new revision with 3 replicas serving: 3 new ones launch; the route switches to all of them at once, only once every one is healthy; then the old ones drain', (t) => {
  const s1 = svc('iris', 1);
  const s2 = svc('iris', 2);
  const old = [box('iris', 1), box('iris', 1), box('iris', 1)];
  const rollout = { service: s2, previous: old };
  t.deepEqual(plan(serving(s1, old), [s2], ctx({ replicas: want(1) })), [{ kind: 'pull', rollout }], 'as many as serve now, even when fewer are asked');
  t.deepEqual(kinds(plan(serving(s1, old, [], { localImages: new Set([image(2)]) }), [s2], ctx({ replicas: want(1) }))), ['create', 'create', 'create']);
  const fresh = [box('iris', 2), box('iris', 2), box('iris', 2)];
  const launched = new Map<string, LaunchStage>([[fresh[0]!.id, 'healthy'], [fresh[1]!.id, 'healthy'], [fresh[2]!.id, 'started']]);
  const waiting = plan(serving(s1, old, fresh), [s2], ctx({ replicas: want(1), launched }));
  t.deepEqual(waiting, [{ kind: 'waitHealthy', rollout, container: fresh[2] }], 'no switch while one is not healthy; the old route is unchanged');
  const ready = plan(serving(s1, old, fresh), [s2], ctx({ replicas: want(1), launched: stages(fresh, 'healthy') }));
  t.deepEqual(ready, [{ kind: 'switch', rollout, containers: fresh }]);
  const after = plan(serving(s2, fresh, old), [s2], ctx({ replicas: want(3), retired: new Set(old.map((c) => c.id)) }));
  t.deepEqual(after, old.map((container) => ({ kind: 'drain', container })));
});

test('a new revision on a service scaled to 1 that may grow: as many new replicas as the autoscaler asks (within max)', (t) => {
  const old = [box('iris', 1)];
  const p = plan(serving(svc('iris', 1), old, [], { localImages: new Set([image(2)]) }), [svc('iris', 2)], ctx({ replicas: want(3) }));
  t.deepEqual(kinds(p), ['create', 'create', 'create']);
});

test('a new replica that failed: the launch is forgotten and backs off; all new replicas are removed, the old ones keep the route', (t) => {
  const s1 = svc('iris', 1);
  const s2 = svc('iris', 2);
  const old = [box('iris', 1), box('iris', 1)];
  const fresh = [box('iris', 2), box('iris', 2, { running: false })];
  const p = plan(serving(s1, old, fresh), [s2], ctx({ replicas: want(2), blocked: new Set([`iris@2@${image(2)}`]) }));
  t.deepEqual(p, fresh.map((container) => ({ kind: 'remove', container })));
});

test('a replica the gateway lost is out of the next route, removed and replaced; so is a promoted replica found stopped', (t) => {
  const s = svc('iris', 1);
  const [a, b, c] = [box('iris', 1), box('iris', 1), box('iris', 1)];
  const lost = plan(serving(s, [a!, b!, c!]), [s], ctx({ replicas: want(3), ejected: new Set([b!.id]) }));
  t.deepEqual(kinds(lost), ['create', 'remove', 'route']);
  t.like(lost.find((x) => x.kind === 'route'), { to: { replicas: replicas([a!, c!]) } });
  t.like(lost.find((x) => x.kind === 'remove'), { container: b });
  const stopped = { ...b!, running: false };
  const dead = plan(serving(s, [a!, stopped, c!]), [s], ctx({ replicas: want(3) }));
  t.deepEqual(kinds(dead), ['create', 'remove', 'route']);
  t.like(dead.find((x) => x.kind === 'route'), { to: { replicas: replicas([a!, c!]) } });
});

test('changed memory and CPU limits resize each running replica in place: no new container, no switch; a lifted limit is left as it is', (t) => {
  const before = svc('iris', 1, { memoryBytes: 64 * MiB, cpus: 0.5 });
  const [a, b] = [box('iris', 1, { limits: { memoryBytes: 64 * MiB, cpus: 0.5 } }), box('iris', 1, { limits: { memoryBytes: 64 * MiB, cpus: 0.5 } })];
  const after = svc('iris', 1, { memoryBytes: 256 * MiB, cpus: 0.5, maxQueue: 2 });
  const p = plan(serving(before, [a!, b!]), [after], ctx({ replicas: want(2) }));
  t.deepEqual(p, [
    { kind: 'route', service: 'iris', to: { service: after, replicas: replicas([a!, b!]) } },
    { kind: 'resize', container: a, limits: { memoryBytes: 256 * MiB, cpus: 0.5 } },
    { kind: 'resize', container: b, limits: { memoryBytes: 256 * MiB, cpus: 0.5 } },
  ]);
  t.deepEqual(plan(serving(before, [a!, b!]), [svc('iris', 1, { memoryBytes: null, cpus: 0.5 })], ctx({ replicas: want(2) })).filter((x) => x.kind === 'resize'), []);
  t.deepEqual(plan(serving(before, [a!, b!]), [before], ctx({ replicas: want(2) })), [], 'limits as they are: nothing to do');
});

test('two services plan independently, each in its own lane: one mid-pull, the other scaling and switching', (t) => {
  const iris = svc('iris', 1);
  const counter2 = svc('counter', 2);
  const a = box('iris', 1);
  const oldCounter = box('counter', 1);
  const freshCounter = box('counter', 2);
  const current: Current = {
    containers: [a, oldCounter, freshCounter],
    promoted: new Set([a.id, oldCounter.id]),
    localImages: new Set(),
    unusedImages: [],
    routes: [routeOf(iris, replicas([a])), routeOf(svc('counter', 1), replicas([oldCounter]))],
  };
  const p = plan(current, [svc('iris', 3), counter2], ctx({ replicas: new Map([['iris', 1], ['counter', 1]]), launched: new Map([[freshCounter.id, 'healthy']]) }));
  t.deepEqual(p.map((s) => [laneOf(s), s.kind]), [
    ['iris', 'pull'],
    ['counter', 'switch'],
  ]);
});
