// The API scoring code imports: `import { metrics } from 'edgeml-runtime'` (ES module) or
// `const { metrics } = require('edgeml-runtime')` (CommonJS); the runtime resolves that name to this
// file (resolve-hooks.mjs, and a CommonJS resolver hook in load-app.mjs). CommonJS so that both
// module kinds share one instance: an ES import of a .cjs file goes through the require cache.
'use strict';

const NAME = /^[A-Za-z_][A-Za-z0-9_.]{0,63}$/;
/** Distinct names (counters and observations together); more are dropped and counted. */
const MAX_NAMES = 100;

const startedAt = new Date().toISOString();
const counters = new Map();
const observations = new Map();
let dropped = 0;

function checkName(name) {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`metrics: invalid name ${JSON.stringify(name)} (letters, digits, _ and ., starting with a letter or _, at most 64 characters)`);
  }
}

// A total that overflows would serialise as null in GET /metrics: the update is refused instead.
function checkTotal(what, total) {
  if (!Number.isFinite(total)) throw new RangeError(`${what}: the total would overflow (not a finite number); the update is refused`);
  return total;
}

function hasRoom(map, name) {
  if (map.has(name)) return true;
  if (counters.size + observations.size < MAX_NAMES) return true;
  dropped += 1;
  return false;
}

const metrics = Object.freeze({
  /** Adds `n` (default 1, finite and >= 0) to the counter `name`. */
  count(name, n = 1) {
    checkName(name);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
      throw new TypeError(`metrics.count(${JSON.stringify(name)}): n must be a finite number >= 0, not ${String(n)}`);
    }
    if (hasRoom(counters, name)) counters.set(name, checkTotal(`metrics.count(${JSON.stringify(name)})`, (counters.get(name) || 0) + n));
  },
  /** Records one value (finite) of the observation `name`: count, sum, min and max are kept. */
  observe(name, value) {
    checkName(name);
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError(`metrics.observe(${JSON.stringify(name)}): value must be a finite number, not ${String(value)}`);
    }
    if (!hasRoom(observations, name)) return;
    const o = observations.get(name);
    if (o) {
      o.sum = checkTotal(`metrics.observe(${JSON.stringify(name)})`, o.sum + value);
      o.count += 1;
      if (value < o.min) o.min = value;
      if (value > o.max) o.max = value;
    } else {
      observations.set(name, { count: 1, sum: value, min: value, max: value });
    }
  },
});

/** The `GET /metrics` document: cumulative since the process started. */
function metricsSnapshot() {
  return {
    startedAt,
    counters: Object.fromEntries(counters),
    observations: Object.fromEntries([...observations].map(([k, o]) => [k, { ...o }])),
    dropped,
  };
}

module.exports = { metrics, metricsSnapshot };
