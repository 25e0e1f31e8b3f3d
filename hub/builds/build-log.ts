/**
 * Build logs: one file per image under `DATA/builds/logs/`, plus a live copy in memory while the
 * build runs so that followers get every line from the start, then each new one, without racing
 * the file. Bounded: a runaway build cannot fill the disk or the hub's memory.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { formatBytes } from '../../shared/size.js';

export const MAX_LOG_BYTES = 8 * 1024 * 1024;

type Listener = (line: string | null) => void;

export class LiveBuildLog {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<Listener>();
  #bytes = 0;
  #truncated = false;
  #closed = false;

  constructor(
    private readonly path: string,
    private readonly file: WriteStream,
  ) {}

  write(line: string): void {
    if (this.#closed || this.#truncated) return;
    let text = line;
    if (this.#bytes + Buffer.byteLength(line) + 1 > MAX_LOG_BYTES) {
      this.#truncated = true;
      text = `… the log is cut here: it reached ${formatBytes(MAX_LOG_BYTES)}`;
    }
    this.#bytes += Buffer.byteLength(text) + 1;
    this.#lines.push(text);
    this.file.write(`${text}\n`);
    for (const listener of this.#listeners) listener(text);
  }

  /** Writes the log so far to `out`; with `follow`, then each new line, ending `out` with the build. */
  attach(out: PassThrough, follow: boolean): void {
    for (const line of this.#lines) out.write(`${line}\n`);
    if (this.#closed || !follow) {
      out.end();
      return;
    }
    const listener: Listener = (line) => {
      if (line === null) {
        this.#listeners.delete(listener);
        out.end();
      } else {
        out.write(`${line}\n`);
      }
    };
    this.#listeners.add(listener);
    out.once('close', () => this.#listeners.delete(listener));
  }

  /** Flushes the file to disk and ends every follower. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve, reject) => this.file.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const handle = await open(this.path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    for (const listener of [...this.#listeners]) listener(null);
  }
}

export class BuildLogs {
  readonly #live = new Map<number, LiveBuildLog>();
  /** Followers of builds that have not started yet. */
  readonly #waiting = new Map<number, Set<PassThrough>>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<BuildLogs> {
    await mkdir(dir, { recursive: true });
    return new BuildLogs(dir);
  }

  private path(id: number): string {
    return join(this.dir, `${id}.log`);
  }

  /** Starts the log of build `id` afresh (a restarted build rewrites it). */
  begin(id: number): LiveBuildLog {
    const log = new LiveBuildLog(this.path(id), createWriteStream(this.path(id), { flags: 'w', mode: 0o600 }));
    this.#live.set(id, log);
    for (const out of this.#waiting.get(id) ?? []) log.attach(out, true);
    this.#waiting.delete(id);
    return log;
  }

  /** A queued build that will never start (cancelled): its followers get the end of the log. */
  abandon(id: number): void {
    for (const out of this.#waiting.get(id) ?? []) out.end();
    this.#waiting.delete(id);
  }

  async end(id: number): Promise<void> {
    const log = this.#live.get(id);
    if (!log) return;
    this.#live.delete(id);
    await log.close();
  }

  /**
   * The log as it stands. With `follow`, a running build's log stays open until the build ends,
   * and so does a queued build's (`pending`), which starts empty.
   */
  async read(id: number, opts: { follow: boolean; pending: boolean }): Promise<Readable> {
    const out = new PassThrough();
    const live = this.#live.get(id);
    if (live) {
      live.attach(out, opts.follow);
      return out;
    }
    if (opts.follow && opts.pending) {
      const waiting = this.#waiting.get(id) ?? new Set();
      waiting.add(out);
      this.#waiting.set(id, waiting);
      out.once('close', () => waiting.delete(out));
      return out;
    }
    const exists = await stat(this.path(id)).then(
      () => true,
      () => false,
    );
    if (!exists) return new PassThrough().end();
    return createReadStream(this.path(id));
  }
}
