/**
 * Runs `checkScoringSchema` in a worker thread with a deadline. The schema comes from a user, and
 * a pattern such as `^(a+)+$` against a crafted sample can backtrack for minutes: on the hub's
 * main thread that would stall every request and the MQTT broker with it.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { checkSchemaDepth, checkScoringSchema, type ScoringSchema } from './scoring-schema.js';

const WORKER_MARK = 'edgemlScoringSchemaCheck';

type WorkerAnswer = { ok: true; value: ScoringSchema } | { ok: false; code: string; message: string; httpStatus?: number };

export async function checkScoringSchemaIsolated(doc: unknown, timeoutMs: number): Promise<ScoringSchema> {
  // Before the worker: copying a too deeply nested document into it would overflow the stack here.
  checkSchemaDepth(doc);
  // Run from TypeScript sources (in-process tests under tsx), a worker could not load this file:
  // Node 20 does not apply tsx's loader to worker threads. The hub itself runs the compiled code.
  if (import.meta.url.endsWith('.ts')) return checkScoringSchema(doc);
  // A memory-hungry schema takes down the worker, not the hub.
  const worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_MARK]: doc }, resourceLimits: { maxOldGenerationSizeMb: 256 } });
  try {
    const tooSlow = new EdgemlError(
      ErrorCodes.HUB_MANIFEST_INVALID,
      `schema: checking the sample against schema.input took longer than ${timeoutMs / 1000} s (a pattern that backtracks?)`,
      { httpStatus: 400 },
    );
    const answer = await new Promise<WorkerAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(tooSlow), timeoutMs);
      worker.once('message', (m: WorkerAnswer) => {
        clearTimeout(timer);
        resolve(m);
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new EdgemlError(ErrorCodes.INTERNAL, `the schema check stopped without an answer (exit ${code})`));
      });
    });
    if (answer.ok) return answer.value;
    throw new EdgemlError(answer.code as typeof ErrorCodes.HUB_MANIFEST_INVALID, answer.message, { httpStatus: answer.httpStatus });
  } finally {
    await worker.terminate();
  }
}

// Only a worker started above runs the check: another thread importing this module does not.
const task = !isMainThread && parentPort && typeof workerData === 'object' && workerData !== null && WORKER_MARK in workerData;
if (task) {
  let answer: WorkerAnswer;
  try {
    answer = { ok: true, value: checkScoringSchema((workerData as Record<string, unknown>)[WORKER_MARK]) };
  } catch (err) {
    answer = isEdgemlError(err)
      ? { ok: false, code: err.code, message: err.message, httpStatus: err.httpStatus }
      : { ok: false, code: ErrorCodes.INTERNAL, message: (err as Error).message };
  }
  parentPort!.postMessage(answer);
}
