/**
 * Checks a base dataset's JSONL as it streams in: every line a JSON object with `input` and a
 * `label` that is not null (null means "unlabelled" in an export). Blank lines are skipped. Only
 * the line being read is held in memory, so a line is capped.
 */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';

export const MAX_DATASET_LINE_BYTES = 8 * 1024 * 1024;

function refused(line: number, why: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_DATASET_INVALID, `line ${line}: ${why}`, { httpStatus: 400, details: { line } });
}

/** Why `text` is no dataset row, or undefined when it is one. */
function rowProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object: each line is {"input": …, "label": …}';
  if (!('input' in value)) return 'has no "input"';
  if (!('label' in value) || (value as { label: unknown }).label === null) return 'has no "label" (null is no label)';
  return undefined;
}

/**
 * Splits a byte stream into lines at LF only, for registering and for reading alike: a CR is part
 * of its line (JSON takes it as whitespace), so a file reads back exactly as it was checked.
 */
class LfLineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  /** `tooLong` is thrown when the line being gathered exceeds MAX_DATASET_LINE_BYTES. */
  constructor(private readonly tooLong: () => Error) {}

  /** The lines `chunk` completes, without their LF. */
  *write(chunk: Uint8Array): Generator<string> {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
      this.#take(buf.subarray(0, nl));
      yield this.#end();
      buf = buf.subarray(nl + 1);
    }
    this.#take(buf);
  }

  /** The last line when it has no LF. */
  finish(): string | undefined {
    return this.#pendingBytes > 0 ? this.#end() : undefined;
  }

  #take(part: Buffer): void {
    if (part.length === 0) return;
    this.#pendingBytes += part.length;
    if (this.#pendingBytes > MAX_DATASET_LINE_BYTES) throw this.tooLong();
    // Copied: the chunk's memory may be reused by the stream once this returns.
    this.#pending.push(Buffer.from(part));
  }

  #end(): string {
    const text = Buffer.concat(this.#pending).toString('utf8');
    this.#pending = [];
    this.#pendingBytes = 0;
    return text;
  }
}

/** The lines of a stored dataset file, split as DatasetLineChecker split them when it was registered. */
export async function* datasetLines(source: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const lines = new LfLineSplitter(() => new RangeError(`a dataset line is longer than ${formatBytes(MAX_DATASET_LINE_BYTES)}`));
  for await (const chunk of source) yield* lines.write(chunk);
  const last = lines.finish();
  if (last !== undefined) yield last;
}

export class DatasetLineChecker {
  #line = 0;
  readonly #lines = new LfLineSplitter(() => refused(this.#line + 1, `longer than ${formatBytes(MAX_DATASET_LINE_BYTES)}`));
  rows = 0;

  /** Checks the lines `chunk` completes; throws HUB_E_DATASET_INVALID naming the first bad one. */
  write(chunk: Uint8Array): void {
    for (const text of this.#lines.write(chunk)) this.#check(text);
  }

  /** Checks the last line (one without a newline); returns the number of rows. */
  finish(): number {
    const last = this.#lines.finish();
    if (last !== undefined) this.#check(last);
    return this.rows;
  }

  #check(text: string): void {
    this.#line += 1;
    if (text.trim() === '') return;
    const problem = rowProblem(text);
    if (problem) throw refused(this.#line, problem);
    this.rows += 1;
  }
}
