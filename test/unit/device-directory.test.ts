/**
 * The hub's device directory (hub/fleet/device-directory.ts), driven by a fake clock.
 */
import test from 'ava';
import { FakeClock } from '../helpers/fake-clock.js';
import type { DeviceFacts, StatusMessage } from '../../shared/protocol.js';
import { DeviceDirectory } from '../../hub/fleet/device-directory.js';

const T0 = Date.parse('2024-05-01T12:00:00.000Z');

function facts(hostname: string, cpus = 4): DeviceFacts {
  return {
    hostname,
    platform: 'linux/amd64',
    arch: 'x64',
    os: { distro: 'Ubuntu', release: '24.04', kernel: '6.8.0' },
    cpus,
    memoryBytes: 8 * 1024 ** 3,
    docker: { version: '27.0.1', apiVersion: '1.46', os: 'linux', arch: 'amd64' },
    agentVersion: '0.1.0',
  };
}

const online = (hostname: string, since = '2024-05-01T11:59:00.000Z'): StatusMessage => ({ v: 1, state: 'online', since, facts: facts(hostname) });
const offline = (reason: 'lost' | 'shutdown'): StatusMessage => ({ v: 1, state: 'offline', reason });

function setup() {
  const clock = new FakeClock(T0);
  return { clock, dir: new DeviceDirectory(clock) };
}

test('an unknown device is undefined and an empty directory lists nothing', (t) => {
  const { dir } = setup();
  t.is(dir.get('nobody'), undefined);
  t.deepEqual(dir.list(), []);
  t.is(dir.onlineCount(), 0);
});

test('an online status records facts, onlineSince and lastSeen from the clock', (t) => {
  const { dir } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  t.deepEqual(dir.get('gw-1'), {
    id: 'gw-1',
    state: 'online',
    offlineReason: null,
    onlineSince: '2024-05-01T11:59:00.000Z',
    lastSeen: '2024-05-01T12:00:00.000Z',
    facts: facts('host-1'),
  });
  t.is(dir.get('other'), undefined);
});

test('online → offline (lost) keeps the facts, clears onlineSince and updates lastSeen', (t) => {
  const { dir, clock } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  clock.ms = T0 + 90_000;
  dir.applyStatus('gw-1', offline('lost'));
  t.deepEqual(dir.get('gw-1'), {
    id: 'gw-1',
    state: 'offline',
    offlineReason: 'lost',
    onlineSince: null,
    lastSeen: '2024-05-01T12:01:30.000Z',
    facts: facts('host-1'),
  });
});

test('offline (shutdown) is recorded with its reason', (t) => {
  const { dir } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  dir.applyStatus('gw-1', offline('shutdown'));
  const record = dir.get('gw-1');
  t.is(record?.state, 'offline');
  t.is(record?.offlineReason, 'shutdown');
  t.deepEqual(record?.facts, facts('host-1'));
});

test('offline for a device never seen online has no facts', (t) => {
  const { dir } = setup();
  dir.applyStatus('ghost', offline('lost'));
  t.like(dir.get('ghost'), { id: 'ghost', state: 'offline', offlineReason: 'lost', onlineSince: null, facts: null });
});

test('two offline messages in a row still keep the facts from the last online', (t) => {
  const { dir } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  dir.applyStatus('gw-1', offline('lost'));
  dir.applyStatus('gw-1', offline('shutdown'));
  t.deepEqual(dir.get('gw-1')?.facts, facts('host-1'));
  t.is(dir.get('gw-1')?.offlineReason, 'shutdown');
});

test('coming back online replaces facts, clears the offline reason and sets the new since', (t) => {
  const { dir, clock } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  dir.applyStatus('gw-1', offline('lost'));
  clock.ms = T0 + 3_600_000;
  dir.applyStatus('gw-1', online('host-1-reimaged', '2024-05-01T13:00:00.000Z'));
  t.deepEqual(dir.get('gw-1'), {
    id: 'gw-1',
    state: 'online',
    offlineReason: null,
    onlineSince: '2024-05-01T13:00:00.000Z',
    lastSeen: '2024-05-01T13:00:00.000Z',
    facts: facts('host-1-reimaged'),
  });
});

test('onlineCount follows each device\'s latest status', (t) => {
  const { dir } = setup();
  dir.applyStatus('a', online('a'));
  dir.applyStatus('b', online('b'));
  dir.applyStatus('c', offline('lost'));
  t.is(dir.onlineCount(), 2);
  dir.applyStatus('a', offline('shutdown'));
  t.is(dir.onlineCount(), 1);
  dir.applyStatus('b', online('b')); // repeated online does not double count
  t.is(dir.onlineCount(), 1);
  dir.applyStatus('c', online('c'));
  t.is(dir.onlineCount(), 2);
});

test('list returns every device sorted by id', (t) => {
  const { dir } = setup();
  for (const id of ['gw-2', 'alpha', 'gw-10', 'gw-1', 'zeta']) dir.applyStatus(id, online(id));
  dir.applyStatus('beta', offline('lost'));
  t.deepEqual(
    dir.list().map((d) => d.id),
    ['alpha', 'beta', 'gw-1', 'gw-10', 'gw-2', 'zeta'],
  );
  t.is(dir.list().length, 6);
});

test('get returns a copy: mutating it, deeply, does not change the directory', (t) => {
  const { dir } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  const copy = dir.get('gw-1')!;
  copy.state = 'offline';
  copy.facts!.cpus = 999;
  copy.facts!.os.kernel = 'tampered';
  t.not(dir.get('gw-1'), dir.get('gw-1'), 'a fresh object each call');
  t.like(dir.get('gw-1'), { state: 'online' });
  t.is(dir.get('gw-1')?.facts?.cpus, 4);
  t.is(dir.get('gw-1')?.facts?.os.kernel, '6.8.0');
});

test('list returns copies too', (t) => {
  const { dir } = setup();
  dir.applyStatus('gw-1', online('host-1'));
  const [listed] = dir.list();
  listed!.state = 'offline';
  listed!.facts!.hostname = 'tampered';
  t.is(dir.onlineCount(), 1);
  t.is(dir.get('gw-1')?.facts?.hostname, 'host-1');
});
