/**
 * A bounded scoring load for integration tests: `clients` loops, each sending one request at a
 * time to a gateway until `stop()` (or `durationMs`), recording every outcome with its time. A 429
 * is retried after a short pause, as a client honouring Retry-After would (but faster, to keep the
 * offered load up). Everything stays on loopback.
 */
import { Agent, request } from 'undici';

export interface Outcome {
  /** ms since the load started */
  at: number;
  /** HTTP status, or null when the connection failed */
  status: number | null;
  error?: string;
}

export interface Load {
  outcomes: Outcome[];
  /** Stops the clients and waits for their last requests. */
  stop(): Promise<Outcome[]>;
  /** Resolves when `durationMs` is over and the clients are done. */
  done: Promise<Outcome[]>;
}

export interface LoadOptions {
  url: string;
  key: string;
  body: unknown;
  clients: number;
  durationMs: number;
  /** Pause after a 429 before the next request of that client. */
  backoffMs?: number;
}

export function startLoad(o: LoadOptions): Load {
  const dispatcher = new Agent({ connections: o.clients * 2, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const outcomes: Outcome[] = [];
  const started = Date.now();
  const deadline = started + o.durationMs;
  let stopped = false;
  const payload = JSON.stringify(o.body);
  const client = async () => {
    while (!stopped && Date.now() < deadline) {
      let status: number | null = null;
      try {
        const res = await request(o.url, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json', authorization: `Bearer ${o.key}` }, body: payload });
        await res.body.dump();
        status = res.statusCode;
        outcomes.push({ at: Date.now() - started, status });
      } catch (err) {
        outcomes.push({ at: Date.now() - started, status: null, error: (err as Error).message });
      }
      if (status === 429 || status === null) await new Promise((r) => setTimeout(r, o.backoffMs ?? 50));
    }
  };
  const done = Promise.all(Array.from({ length: o.clients }, client)).then(async () => {
    await dispatcher.close();
    return outcomes;
  });
  return {
    outcomes,
    done,
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}

/** Counts by status (`error` for failed connections). */
export function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const k = o.status === null ? 'error' : String(o.status);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}
