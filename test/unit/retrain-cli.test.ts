/** `edgeml retrain show JOB RUN`: how a run reads; flags refused before any request; a run of another job refused. */
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildProgram } from '../../cli/main.js';
import { renderRun } from '../../cli/commands/retraining.js';
import type { RetrainingRun } from '../../shared/api/retraining.js';

const AT = '2026-12-01T00:00:00.000Z';

const run = (change: Partial<RetrainingRun>): RetrainingRun => ({
  id: 3, job: 'lin-job', service: 'lin', trigger: 'labels', status: 'rejected', stage: null,
  rows: { train: 32, eval: 8, labels: 40 }, labels: { since: AT, until: AT, count: 40 },
  current: { name: 'linear', version: 1 }, candidate: { name: 'linear', version: 2 }, image: 5,
  evaluation: { metric: 'mae', current: 0.5, candidate: 0.45, minImprovement: 0.1, rows: 8, compared: 8, failed: { current: 0, candidate: 0 } },
  rollout: null, reason: "the candidate's mae 0.45 does not beat the current model's 0.5 by 0.1",
  createdAt: AT, startedAt: AT, finishedAt: AT, createdBy: null, ...change,
});

test('a rejected run shows both numbers, the rows and the candidate', (t) => {
  const text = renderRun(run({}));
  t.regex(text, /status:\s+rejected\n/);
  t.regex(text, /reason:\s+the candidate's mae 0\.45 does not beat the current model's 0\.5 by 0\.1/);
  t.regex(text, /rows:\s+40 labelled; 32 train, 8 eval/);
  t.regex(text, /evaluation:\s+mae: current 0\.5, candidate 0\.45 \(on 8 rows, min improvement 0\.1\)/);
  t.regex(text, /candidate:\s+linear:2/);
  t.regex(renderRun(run({ evaluation: { ...run({}).evaluation!, compared: 6, failed: { current: 2, candidate: 1 } } })), /evaluation:\s+mae: current 0\.5, candidate 0\.45 \(on the 6 of 8 rows both answered, min improvement 0\.1\)/);
  t.notRegex(text, /rollout:/);
});

test('a running run shows its stage; a failed one where it stopped', (t) => {
  t.regex(renderRun(run({ status: 'running', stage: 'evaluating', evaluation: null, reason: null, finishedAt: null })), /status:\s+running \(evaluating\)/);
  t.regex(renderRun(run({ status: 'failed', stage: 'training', reason: 'training timed-out: did not finish within 5 s' })), /status:\s+failed \(training\)\n[\s\S]*reason:\s+training timed-out/);
});

async function usage(args: string[]): Promise<string> {
  let stderr = '';
  const sink = new Writable({ write: (chunk, _enc, done) => ((stderr += String(chunk)), done()) });
  const io = { env: {}, stdout: sink, stderr: sink, cwd: '/', interruptSignal: () => new AbortController().signal } as never;
  const program = buildProgram(io);
  const quiet = (c: typeof program): void => {
    c.configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => undefined, outputError: (s) => (stderr += s) });
    c.exitOverride();
    c.commands.forEach(quiet);
  };
  quiet(program);
  await program.parseAsync(['node', 'edgeml', ...args]).catch((err: Error) => (stderr += err.message));
  return stderr;
}

test('bad flag values are refused before anything is sent', async (t) => {
  t.regex(await usage(['retrain', 'create', 'j', '--service', 's', '--trainer', 't', '--params', '[1]']), /--params: expected a JSON object/);
  t.regex(await usage(['retrain', 'create', 'j', '--service', 's', '--trainer', 't', '--eval-fraction', '1']), /--eval-fraction "1": expected a number between 0 and 1/);
  t.regex(await usage(['retrain', 'create', 'j', '--service', 's', '--trainer', 't', '--eval-metric', 'f1']), /--eval-metric "f1": expected one of accuracy, mae, rmse/);
  t.regex(await usage(['retrain', 'create', 'j', '--service', 's', '--trainer', 't', '--min-new-labels', '2.5']), /--min-new-labels "2.5": expected a whole number ≥ 1/);
  t.regex(await usage(['retrain', 'create', 'j', '--trainer', 't']), /required option '--service <name>'/);
  t.regex(await usage(['retrain', 'show', 'j', 'x']), /run "x": expected a run id/);
});

/** A hub that has run 3 (of job lin-job) and records what it was asked. */
async function fakeHub(t: ExecutionContext): Promise<{ url: string; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`);
    if (req.method === 'GET' && req.url === '/api/v1/retraining/runs/3') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(run({})));
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'HUB_E_NOT_FOUND', message: `no route ${req.url}` } }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

test('show, logs and cancel of JOB RUN refuse a run of another job (nothing cancelled)', async (t) => {
  const hub = await fakeHub(t);
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const io = { env: { EDGEML_API_KEY: 'emk_test' }, stdout: sink, stderr: sink, cwd: '/', interruptSignal: () => new AbortController().signal } as never;
  for (const command of ['show', 'logs', 'cancel']) {
    const program = buildProgram(io).configureOutput({ writeErr: () => undefined });
    const err = await t.throwsAsync(program.parseAsync(['node', 'edgeml', 'retrain', command, 'other-job', '3', '--hub', hub.url]));
    t.is(err?.message, 'run 3 is a run of job lin-job, not of other-job: see edgeml retrain show lin-job 3', command);
  }
  t.deepEqual(hub.asked, ['GET /api/v1/retraining/runs/3', 'GET /api/v1/retraining/runs/3', 'GET /api/v1/retraining/runs/3']);
});
