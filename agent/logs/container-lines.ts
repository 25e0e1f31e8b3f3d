/**
 * A service's output over all its replicas, each line tagged with the service and its replica
 * (1-based, in order of creation), merged as the lines come.
 */
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import type { LogLine } from '../../shared/protocol.js';
import { capLine } from './log-session.js';

export interface ServiceLogQuery {
  deviceId: string;
  service: string;
  /** ms since the epoch. */
  since?: number;
  tail?: number;
  follow: boolean;
}

export async function* serviceLines(runtime: Pick<ContainerRuntime, 'list' | 'logs'>, q: ServiceLogQuery, signal: AbortSignal): AsyncGenerator<LogLine> {
  const replicas = (await runtime.list(q.deviceId))
    .filter((c) => c.service === q.service)
    .sort((a, b) => a.created - b.created || a.name.localeCompare(b.name));
  const opts = { follow: q.follow, signal, ...(q.since === undefined ? {} : { since: Math.floor(q.since / 1000) }), ...(q.tail === undefined ? {} : { tail: q.tail }) };
  const sources = replicas.map((c, i) =>
    (async function* () {
      for await (const l of runtime.logs(c.id, opts)) yield { ts: l.ts, source: q.service, replica: i + 1, stream: l.stream, line: capLine(l.line) } satisfies LogLine;
    })(),
  );
  yield* merge(sources);
}

/** Yields from every iterator as each produces, until all end; the first failure ends it all. */
export async function* merge<T>(sources: AsyncIterator<T>[]): AsyncGenerator<T> {
  const next = new Map(sources.map((s, i) => [i, s.next().then((r) => ({ i, r }))]));
  try {
    while (next.size > 0) {
      const { i, r } = await Promise.race(next.values());
      if (r.done) {
        next.delete(i);
        continue;
      }
      next.set(i, sources[i]!.next().then((x) => ({ i, r: x })));
      yield r.value;
    }
  } finally {
    // Stops the others (their signal has usually ended them already).
    await Promise.allSettled([...next.keys()].map((i) => sources[i]!.return?.(undefined)));
  }
}
