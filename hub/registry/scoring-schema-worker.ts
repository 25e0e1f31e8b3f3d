/**
 * Runs `checkScoringSchema` in a worker thread with a deadline. The schema comes from a user, and
 * a pattern such as `^(a+)+$` against a crafted sample can backtrack for minutes: on the hub's
 * main thread that would stall every request and the MQTT broker with it.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { checkScoringSchema, type ScoringSchema } from './scoring-schema.js';

type WorkerAnswer = { ok: true; value: ScoringSchema } | { ok: false; code: string; message: string; httpStatus?: number };

export async function checkScoringSchemaIsolated(doc: unknown, timeoutMs: number): Promise<ScoringSchema> {
  // Run from TypeScript sources (in-process tests under tsx), a worker could not load this file:
  // Node 20 does not apply tsx's loader to worker threads. The hub itself runs the compiled code.
  if (import.meta.url.endsWith('.ts')) return checkScoringSchema(doc);
  const worker = new Worker(new URL(import.meta.url), { workerData: doc });
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
    });
    if (answer.ok) return answer.value;
    throw new EdgemlError(answer.code as typeof ErrorCodes.HUB_MANIFEST_INVALID, answer.message, { httpStatus: answer.httpStatus });
  } finally {
    await worker.terminate();
  }
}

if (!isMainThread && parentPort) {
  let answer: WorkerAnswer;
  try {
    answer = { ok: true, value: checkScoringSchema(workerData) };
  } catch (err) {
    answer = isEdgemlError(err)
      ? { ok: false, code: err.code, message: err.message, httpStatus: err.httpStatus }
      : { ok: false, code: ErrorCodes.INTERNAL, message: (err as Error).message };
  }
  parentPort.postMessage(answer);
}
