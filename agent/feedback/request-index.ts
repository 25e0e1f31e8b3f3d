/**
 * The request ids the gateway captured (sampled into capture), so a label sent later by request id
 * can be checked and tied to the revision and models that answered (issue 17). Durable and bounded:
 * - an append-only log in segment files (DIR/NNNNNNNNNNNN.jsonl, one JSON line per id). A line is
 *   written with one write() as soon as the sample is taken, without an fsync: it survives a kill
 *   of the agent (the page cache keeps it), and a power cut costs at most the last ids, whose
 *   labels can still be sent inline. An fsync per captured request would cost the scoring path.
 * - a segment is closed by the id that takes it to `segmentBytes` (4 MiB): the next id goes in the
 *   next segment, whenever their lines are written. Whole segments are removed once their newest id
 *   is older than the retention (7 days by default), or while the index holds over `maxEntries` ids
 *   or its files over `maxBytes` (64 MiB), oldest first (so it may hold one segment's worth more;
 *   ids are kept 7 days unless over 500,000, or 64 MiB of lines, were captured).
 * - all ids are held in memory (the lookup is on a client's request): the route part of an entry
 *   (service, revision, models) is shared between the entries of one revision.
 * A torn or unreadable line (a power cut mid-write) is skipped at open.
 */
import { open as openFile, mkdir, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { CaptureSample } from '../../shared/protocol.js';
import type { CaptureSink } from '../gateway/server.js';

export type ModelRef = { name: string; version: number };

/** What answered a captured request. */
export interface CapturedRequest {
  service: string;
  revision: number;
  models: readonly ModelRef[];
  /** When the request arrived (device clock, ms). */
  ts: number;
}

export interface RequestIndexOptions {
  clock: Clock;
  logger: Logger;
  /** Default 7 days. */
  retentionMs?: number;
  /** Default 500,000 (about 60 MiB of memory at most). */
  maxEntries?: number;
  /** Bytes of all segment files; default 64 MiB (a line takes up to about 5 KiB: 64 models, a 128-character id). */
  maxBytes?: number;
  /** Default 4 MiB. */
  segmentBytes?: number;
}

export const DEFAULT_REQUEST_RETENTION_MS = 7 * 24 * 3600_000;
export const DEFAULT_MAX_INDEXED_REQUESTS = 500_000;
export const DEFAULT_MAX_INDEX_BYTES = 64 * 1024 * 1024;
const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;
const SEGMENT_NAME = /^(\d{12})\.jsonl$/;
const segmentName = (seq: number) => `${String(seq).padStart(12, '0')}.jsonl`;

type RouteRef = Omit<CapturedRequest, 'ts'>;
interface Entry {
  route: RouteRef;
  ts: number;
  segment: number;
}
interface Segment {
  seq: number;
  bytes: number;
  newest: number;
}
/** A line not written yet, and the segment it belongs to. */
interface Pending {
  seq: number;
  line: string;
}
/** One line: id, service, revision, models as [name, version] pairs, ts. */
type Line = [string, string, number, [string, number][], number];

export class RequestIndex {
  readonly #entries = new Map<string, Entry>();
  readonly #routes = new Map<string, RouteRef>();
  #pending: Pending[] = [];
  #writing: Promise<void> = Promise.resolve();
  /** The open segment file, and which segment it is. */
  #file: { seq: number; handle: FileHandle } | null = null;
  #closed = false;
  #warned = false;
  readonly #retentionMs: number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;

  private constructor(
    private readonly dir: string,
    private readonly o: RequestIndexOptions,
    private readonly segments: Segment[],
  ) {
    this.#retentionMs = o.retentionMs ?? DEFAULT_REQUEST_RETENTION_MS;
    this.#maxEntries = o.maxEntries ?? DEFAULT_MAX_INDEXED_REQUESTS;
    this.#maxBytes = o.maxBytes ?? DEFAULT_MAX_INDEX_BYTES;
    this.#segmentBytes = o.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  static async open(dir: string, o: RequestIndexOptions): Promise<RequestIndex> {
    await mkdir(dir, { recursive: true });
    const seqs = (await readdir(dir)).flatMap((n) => SEGMENT_NAME.exec(n)?.slice(1, 2).map(Number) ?? []).sort((a, b) => a - b);
    const index = new RequestIndex(dir, o, []);
    let skipped = 0;
    for (const seq of seqs) {
      const text = await readFile(join(dir, segmentName(seq)), 'utf8');
      const segment: Segment = { seq, bytes: Buffer.byteLength(text), newest: 0 };
      for (const line of text.split('\n')) {
        if (!line) continue;
        const parsed = parseLine(line);
        if (!parsed) {
          skipped += 1;
          continue;
        }
        index.remember(parsed[0], index.routeOf(parsed[1], parsed[2], parsed[3].map(([name, version]) => ({ name, version }))), parsed[4], segment);
      }
      index.segments.push(segment);
    }
    if (skipped > 0) o.logger.warn({ skipped }, 'request index: unreadable lines skipped');
    // Every run writes a segment of its own: a torn last line of the previous run stays on its own line.
    index.segments.push({ seq: (seqs.at(-1) ?? 0) + 1, bytes: 0, newest: 0 });
    await index.prune();
    o.logger.info({ requests: index.#entries.size, segments: index.segments.length }, 'request index loaded');
    return index;
  }

  /** Ids known now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Records a captured request; never throws (a write failure is logged once, the id is still known in memory). */
  record(requestId: string, request: CapturedRequest): void {
    if (this.#closed) return;
    const current = this.segments.at(-1)!;
    const route = this.routeOf(request.service, request.revision, request.models);
    const line = `${JSON.stringify([requestId, route.service, route.revision, route.models.map((m) => [m.name, m.version]), request.ts] satisfies Line)}\n`;
    this.remember(requestId, route, request.ts, current);
    current.bytes += Buffer.byteLength(line);
    this.#pending.push({ seq: current.seq, line });
    // Closed here, not when written: the ids recorded meanwhile belong to the next one, where their lines go.
    if (current.bytes >= this.#segmentBytes) this.segments.push({ seq: current.seq + 1, bytes: 0, newest: 0 });
    if (this.#pending.length === 1) this.#writing = this.#writing.then(() => this.flush());
  }

  get(requestId: string): CapturedRequest | undefined {
    const e = this.#entries.get(requestId);
    return e && { ...e.route, ts: e.ts };
  }

  /**
   * A capture sink that indexes each sample's request id, then hands the sample on. A sample whose
   * request body was not kept as JSON (too large, not JSON, withheld for redaction) is not indexed:
   * a label for it would never join an input at the hub, so the client is told to send {input, label}.
   */
  indexing(sink: CaptureSink): CaptureSink {
    return {
      add: (sample: CaptureSample) => {
        if (sample.requestId !== undefined && sample.request.json !== undefined) this.record(sample.requestId, { service: sample.service, revision: sample.revision, models: sample.models, ts: Date.parse(sample.ts) });
        sink.add(sample);
      },
    };
  }

  /** Writes what is pending and closes the file; later ids are not recorded. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    await this.#file?.handle.close();
    this.#file = null;
  }

  private routeOf(service: string, revision: number, models: readonly ModelRef[]): RouteRef {
    const key = JSON.stringify([service, revision, models.map((m) => [m.name, m.version])]);
    let route = this.#routes.get(key);
    if (!route) this.#routes.set(key, (route = { service, revision, models: models.map(({ name, version }) => ({ name, version })) }));
    return route;
  }

  private remember(requestId: string, route: RouteRef, ts: number, segment: Segment): void {
    this.#entries.set(requestId, { route, ts, segment: segment.seq });
    segment.newest = Math.max(segment.newest, ts);
  }

  /** Appends the pending lines, one write per segment they belong to; then removes what is over the bounds. */
  private async flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    try {
      for (let i = 0; i < pending.length; ) {
        const seq = pending[i]!.seq;
        let end = i;
        while (end < pending.length && pending[end]!.seq === seq) end++;
        await this.write(seq, pending.slice(i, end).map((p) => p.line).join(''));
        i = end;
      }
    } catch (err) {
      if (!this.#warned) this.o.logger.error({ err }, 'request index: cannot write captured request ids; labels for them are refused after a restart');
      this.#warned = true;
    }
    await this.prune().catch((err: unknown) => this.o.logger.warn({ err }, 'request index: cannot remove an old segment'));
  }

  private async write(seq: number, text: string): Promise<void> {
    if (this.#file?.seq !== seq) {
      await this.#file?.handle.close();
      this.#file = null;
      this.#file = { seq, handle: await openFile(join(this.dir, segmentName(seq)), 'a') };
    }
    await this.#file.handle.write(text);
  }

  /**
   * Removes whole closed segments that are past the retention, or beyond a bound, oldest first; never
   * one with lines still to write (its file would come back).
   */
  private async prune(): Promise<void> {
    const oldest = this.o.clock.now() - this.#retentionMs;
    const unwritten = this.#pending[0]?.seq ?? Infinity;
    let bytes = this.segments.reduce((sum, s) => sum + s.bytes, 0);
    while (this.segments.length > 1 && this.segments[0]!.seq < unwritten) {
      const first = this.segments[0]!;
      const expired = first.newest < oldest;
      const over = this.#entries.size > this.#maxEntries || bytes > this.#maxBytes;
      if (!expired && !over) return;
      this.segments.shift();
      bytes -= first.bytes;
      for (const [id, e] of this.#entries) if (e.segment === first.seq) this.#entries.delete(id);
      if (this.#file?.seq === first.seq) {
        await this.#file.handle.close();
        this.#file = null;
      }
      await rm(join(this.dir, segmentName(first.seq)), { force: true });
    }
  }
}

function parseLine(line: string): Line | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    if (!Array.isArray(v) || v.length !== 5) return undefined;
    const [id, service, revision, models, ts] = v as unknown[];
    const modelsOk = Array.isArray(models) && models.every((m) => Array.isArray(m) && typeof m[0] === 'string' && Number.isInteger(m[1]));
    if (typeof id !== 'string' || typeof service !== 'string' || !Number.isInteger(revision) || !modelsOk || typeof ts !== 'number') return undefined;
    return v as Line;
  } catch {
    return undefined;
  }
}
