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

export class DatasetLineChecker {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #line = 0;
  rows = 0;

  /** Checks the lines `chunk` completes; throws HUB_E_DATASET_INVALID naming the first bad one. */
  write(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
      this.#take(buf.subarray(0, nl));
      this.#end();
      buf = buf.subarray(nl + 1);
    }
    this.#take(buf);
  }

  /** Checks the last line (one without a newline); returns the number of rows. */
  finish(): number {
    if (this.#pendingBytes > 0) this.#end();
    return this.rows;
  }

  #take(part: Buffer): void {
    if (part.length === 0) return;
    this.#pendingBytes += part.length;
    if (this.#pendingBytes > MAX_DATASET_LINE_BYTES) throw refused(this.#line + 1, `longer than ${formatBytes(MAX_DATASET_LINE_BYTES)}`);
    // Copied: the chunk's memory may be reused by the stream once this returns.
    this.#pending.push(Buffer.from(part));
  }

  #end(): void {
    this.#line += 1;
    const text = Buffer.concat(this.#pending).toString('utf8');
    this.#pending = [];
    this.#pendingBytes = 0;
    if (text.trim() === '') return;
    const problem = rowProblem(text);
    if (problem) throw refused(this.#line, problem);
    this.rows += 1;
  }
}
