/** The serving record (agent/reconcile/promoted-containers.ts): several trusted replicas per service, and records written before replicas. */
import test from 'ava';
import { pino } from 'pino';
import { PromotedContainers, type RecordStore } from '../../agent/reconcile/promoted-containers.js';

function memoryStore(text: string | null): RecordStore & { text: string | null } {
  const store = { text, read: async () => store.text, write: async (t: string) => void (store.text = t) };
  return store;
}
const load = (store: RecordStore) => PromotedContainers.load(store, pino({ level: 'silent' }));

test('a record from before replicas ({container}) is read as a set of one, and rewritten with the set', async (t) => {
  const store = memoryStore(JSON.stringify({ v: 1, services: { iris: { container: 'c1', images: ['img1'] } }, unused: [] }));
  const record = await load(store);
  t.deepEqual([...record.ids()], ['c1']);
  await record.admit('iris', ['c2'], 'img1');
  t.deepEqual(JSON.parse(store.text!).services, { iris: { containers: ['c1', 'c2'], images: ['img1'] } });
  t.deepEqual([...(await load(store)).ids()].sort(), ['c1', 'c2'], 'read back');
});

test('replicas join (admit), leave (forget), and a switch (promote) replaces the whole set; the service keeps its images', async (t) => {
  const store = memoryStore(null);
  const record = await load(store);
  await record.promote('iris', ['a', 'b'], 'img1');
  await record.admit('iris', ['c'], 'img1');
  t.deepEqual([...record.ids()].sort(), ['a', 'b', 'c']);
  await record.forget(['b']);
  t.deepEqual([...record.ids()].sort(), ['a', 'c']);
  await record.promote('iris', ['d', 'e'], 'img2');
  t.deepEqual([...record.ids()].sort(), ['d', 'e']);
  await record.forget(['d', 'e']);
  t.deepEqual([...record.ids()], []);
  t.deepEqual(record.unused(), [], 'img1 and img2 are still kept (current and previous)');
  t.deepEqual(JSON.parse(store.text!).services.iris.images, ['img2', 'img1']);
});
