/**
 * Stored records the hub skips because they no longer validate (a deployment whose limits devices
 * refuse, a desired state that cannot be sent, a damaged device record). The hub keeps serving the
 * rest of the fleet; each problem is logged once, counted in `/healthz` and listed by the API, and
 * the record itself stays in the store untouched, for someone to fix.
 */
import type { Problem, ProblemKind } from '../../shared/api/problems.js';
import type { Logger } from '../../shared/logger.js';

export class StoredProblems {
  readonly #problems = new Map<string, Problem>();

  constructor(private readonly logger: Logger) {}

  /** Logs a new problem, or a known one whose reason changed; a repeat stays quiet. */
  report(kind: ProblemKind, id: string, message: string): void {
    const key = `${kind}/${id}`;
    if (this.#problems.get(key)?.message === message) return;
    this.#problems.set(key, { kind, id, message });
    this.logger.error({ kind, id, reason: message }, 'stored record skipped: it no longer validates');
  }

  /** The record validates again (fixed, replaced or gone). */
  clear(kind: ProblemKind, id: string): void {
    if (this.#problems.delete(`${kind}/${id}`)) this.logger.info({ kind, id }, 'stored record validates again');
  }

  list(): Problem[] {
    return [...this.#problems.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id));
  }

  count(): number {
    return this.#problems.size;
  }
}
