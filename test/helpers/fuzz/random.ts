/**
 * A seeded stream of random draws for fuzz tests, on top of the simulator's keyed hash (one copy of
 * the mixing function): draw n is `uniform(seed, n)`, so a seed replays the same inputs in order.
 */
import { randomInt } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { drawKey, uniform } from '../../../bench/simulator/seeded-random.js';

export class Random {
  private n = 0;

  constructor(readonly seed: number) {}

  /** A number in [0, 1). */
  next(): number {
    return uniform(this.seed, drawKey('fuzz', this.n++));
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** `length` characters drawn from `alphabet` (code points, so astral characters stay whole). */
  string(alphabet: string, length: number): string {
    const chars = [...alphabet];
    let out = '';
    for (let i = 0; i < length; i++) out += this.pick(chars);
    return out;
  }

  /** A fresh stream for one part of a run, so adding draws in one part does not shift the others. */
  fork(label: string): Random {
    return new Random(Math.floor(uniform(this.seed, drawKey('fork', label)) * 2 ** 31));
  }
}

export interface FuzzBudget {
  seed: number;
  startedAt: number;
  /** Stop after this many inputs… */
  iterations: number;
  /** …or once this much time has gone, whichever comes first. */
  deadline: number;
  /** Whether the budget is spent (`done` inputs sent so far). */
  spent(done: number): boolean;
}

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw}: expected a non-negative number`);
  return value;
}

/**
 * The seed and bounds of one fuzz test. Defaults keep CI at about a minute in all; locally
 * EDGEML_FUZZ_SEED replays a failure, EDGEML_FUZZ_ITERATIONS and EDGEML_FUZZ_SECONDS run longer.
 * The seed is logged first, so ava prints it with any failure of the test.
 */
export function fuzzBudget(t: ExecutionContext, defaults: { iterations: number; seconds: number }): FuzzBudget {
  const seed = envNumber('EDGEML_FUZZ_SEED') ?? randomInt(2 ** 31);
  const iterations = envNumber('EDGEML_FUZZ_ITERATIONS') ?? defaults.iterations;
  const seconds = envNumber('EDGEML_FUZZ_SECONDS') ?? defaults.seconds;
  const startedAt = Date.now();
  const deadline = startedAt + seconds * 1000;
  t.log(`fuzz seed ${seed} (replay: EDGEML_FUZZ_SEED=${seed} npx ava ${t.title ? `--match '${t.title}' ` : ''}FILE)`);
  return { seed, startedAt, iterations, deadline, spent: (done) => done >= iterations || Date.now() >= deadline };
}
