/**
 * The batch ids the archive has stored, in little memory. Agents number their batches
 * `PREFIX.COUNTER` (a prefix per process, a counter that only goes up; agent/telemetry/batch-ids.ts),
 * so a device's ids form a few contiguous runs: kept as ranges per prefix, a week of a device's
 * batches costs a few numbers instead of one string per batch (about 200 bytes each in a Set).
 * Ids of any other shape are kept as they are.
 */
const NUMBERED = /^(.+)\.(0|[1-9][0-9]{0,14})$/;

/** Sorted, disjoint, non-adjacent [from, to] runs. */
type Runs = Array<[number, number]>;

/** The index of the first run whose end is >= n (runs.length if none). */
function firstEndingAtOrAfter(runs: Runs, n: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs[mid]![1] < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function addTo(runs: Runs, n: number): void {
  const i = firstEndingAtOrAfter(runs, n - 1);
  const run = runs[i];
  if (!run || run[0] > n + 1) {
    runs.splice(i, 0, [n, n]);
    return;
  }
  run[0] = Math.min(run[0], n);
  run[1] = Math.max(run[1], n);
  // n may have closed the gap to the next run.
  const next = runs[i + 1];
  if (next && next[0] <= run[1] + 1) {
    run[1] = Math.max(run[1], next[1]);
    runs.splice(i + 1, 1);
  }
}

export class BatchIdSet {
  readonly #runs = new Map<string, Runs>();
  readonly #others = new Set<string>();

  add(id: string): void {
    const m = NUMBERED.exec(id);
    if (!m) {
      this.#others.add(id);
      return;
    }
    let runs = this.#runs.get(m[1]!);
    if (!runs) this.#runs.set(m[1]!, (runs = []));
    addTo(runs, Number(m[2]));
  }

  has(id: string): boolean {
    const m = NUMBERED.exec(id);
    if (!m) return this.#others.has(id);
    const runs = this.#runs.get(m[1]!);
    if (!runs) return false;
    const n = Number(m[2]);
    const run = runs[firstEndingAtOrAfter(runs, n)];
    return run !== undefined && run[0] <= n;
  }

  /** Runs and other ids held: what the memory grows with. */
  entries(): number {
    let n = this.#others.size;
    for (const runs of this.#runs.values()) n += runs.length;
    return n;
  }
}
