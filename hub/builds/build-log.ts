/**
 * Build logs: one file per image under `DATA/builds/logs/`, plus a live copy in memory while the
 * build runs so that followers get every line from the start, then each new one, without racing
 * the file. Bounded: a runaway build cannot fill the disk or the hub's memory, and a follower that
 * stops reading is cut off rather than buffered for.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../shared/logger.js';
import { formatBytes } from '../../shared/size.js';

export const MAX_LOG_BYTES = 8 * 1024 * 1024;
/** How the hub's own lines start (`note`); other output starting so is written like any other line. */
const HUB_LINE_PREFIX = 'edgeml: ';
/** What one follower may have waiting to be sent before it is ended. */
const MAX_FOLLOWER_BACKLOG = 1024 * 1024;

type Listener = (line: string | null) => void;

/** An image build number, or another build's key (a trainer's `NAME-VERSION`): names the log file. */
export type BuildLogId = number | string;

export class LiveBuildLog {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<Listener>();
  #bytes = 0;
  #truncated = false;
  #closed = false;
  #fileFailed = false;

  constructor(
    private readonly path: string,
    private readonly file: WriteStream,
    private readonly logger: Logger,
  ) {
    // A full or failing disk costs the file copy, never the hub: the memory copy still serves followers.
    file.on('error', (err) => {
      if (!this.#fileFailed) logger.error({ err, file: path }, 'cannot write the build log file; keeping it in memory only');
      this.#fileFailed = true;
    });
  }

  /**
   * A line of output (a build step's, a training script's): dropped once the log reached its
   * limit, whatever it says, so what the hub does not write itself cannot fill the log.
   */
  write(line: string): void {
    if (this.#truncated) return;
    this.append(line);
  }

  /** One of the hub's own lines, `edgeml: TEXT`: kept past the limit, as they say how the build or run ended. */
  note(text: string): void {
    this.append(`${HUB_LINE_PREFIX}${text}`);
  }

  private append(line: string): void {
    if (this.#closed) return;
    let text = line;
    if (!this.#truncated && this.#bytes + Buffer.byteLength(line) + 1 > MAX_LOG_BYTES) {
      this.#truncated = true;
      text = `${HUB_LINE_PREFIX}the log is cut here: it reached ${formatBytes(MAX_LOG_BYTES)}`;
    }
    this.#bytes += Buffer.byteLength(text) + 1;
    this.#lines.push(text);
    if (!this.#fileFailed) this.file.write(`${text}\n`);
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
      } else if (out.writableLength > MAX_FOLLOWER_BACKLOG) {
        this.#listeners.delete(listener);
        out.end('edgeml: this reader fell too far behind; read the rest with GET …/log\n');
      } else {
        out.write(`${line}\n`);
      }
    };
    this.#listeners.add(listener);
    out.once('close', () => this.#listeners.delete(listener));
  }

  /** Flushes the file to disk; every follower is ended whatever happens to the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await new Promise<void>((resolve) => this.file.end(() => resolve()));
      if (!this.#fileFailed) {
        const handle = await open(this.path, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
    } catch (err) {
      this.logger.error({ err, file: this.path }, 'cannot flush the build log file');
    } finally {
      for (const listener of [...this.#listeners]) listener(null);
    }
  }
}

export class BuildLogs {
  readonly #live = new Map<BuildLogId, LiveBuildLog>();
  /** Followers of builds that have not started yet. */
  readonly #waiting = new Map<BuildLogId, Set<PassThrough>>();

  private constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  static async open(dir: string, logger: Logger): Promise<BuildLogs> {
    await mkdir(dir, { recursive: true });
    return new BuildLogs(dir, logger);
  }

  private path(id: BuildLogId): string {
    return join(this.dir, `${id}.log`);
  }

  /** Starts the log of build `id` afresh (a restarted build rewrites it). */
  begin(id: BuildLogId): LiveBuildLog {
    const log = new LiveBuildLog(this.path(id), createWriteStream(this.path(id), { flags: 'w', mode: 0o600 }), this.logger);
    this.#live.set(id, log);
    for (const out of this.#waiting.get(id) ?? []) log.attach(out, true);
    this.#waiting.delete(id);
    return log;
  }

  /** Ends the log; it is read from the file only once the file is complete. */
  async end(id: BuildLogId): Promise<void> {
    const log = this.#live.get(id);
    if (!log) return;
    try {
      await log.close();
    } finally {
      this.#live.delete(id);
    }
  }

  /** A queued build that will never start (cancelled): its followers get the end of the log. */
  abandon(id: BuildLogId): void {
    for (const out of this.#waiting.get(id) ?? []) out.end();
    this.#waiting.delete(id);
  }

  /** The hub is stopping: nobody waits for a build that will not start in this run. */
  abandonAll(): void {
    for (const id of [...this.#waiting.keys()]) this.abandon(id);
  }

  /**
   * The log as it stands. With `follow`, a running build's log stays open until the build ends,
   * and so does a queued build's (`pending`), which starts empty.
   */
  async read(id: BuildLogId, opts: { follow: boolean; pending: boolean }): Promise<Readable> {
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
    if (!exists) return out.end();
    return createReadStream(this.path(id));
  }
}
