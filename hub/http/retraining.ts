/**
 * `/api/v1/retraining`: jobs (create, list, show), their runs (start by hand, list, show, cancel)
 * and each run's log, followed like a build log.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { ACTIVE_RUN_STATUSES, JobName, RetrainingJob, RetrainingJobCreate, RetrainingJobList, RetrainingRun, RetrainingRunList, RunLogQuery } from '../../shared/api/retraining.js';
import type { Retraining } from '../retraining/retraining.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';

const tags = ['retraining'];
const jobParams = Type.Object({ name: JobName });
const runParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const retrainingRoutes: FastifyPluginAsyncTypebox<{ retraining: Retraining }> = async (app, { retraining }) => {
  app.post(
    '/api/v1/retraining/jobs',
    {
      config: { scope: 'deploy', idempotent: { status: 201, find: (made) => retraining.jobMadeBy(made) } },
      schema: {
        operationId: 'createRetrainingJob',
        summary: 'Create a retraining job for a deployed service',
        description:
          'A run exports the labelled data of the service (and the datasets), trains with the trainer, registers the candidate with its lineage, scores the eval split with the current and the candidate image, and rolls the candidate out (with the job rollout and gates) if it is better by minImprovement; otherwise it ends rejected. Runs start on the schedule, after minNewLabels new labels, or by hand.',
        tags,
        body: RetrainingJobCreate,
        response: { 201: RetrainingJob, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => reply.code(201).send(await retraining.createJob(req.body, requestActor(req))),
  );
  app.get(
    '/api/v1/retraining/jobs',
    { config: { scope: 'read' }, schema: { operationId: 'listRetrainingJobs', summary: 'Retraining jobs by name, each with its last run', tags, response: { 200: RetrainingJobList } } },
    async () => ({ jobs: await retraining.listJobs() }),
  );
  app.get(
    '/api/v1/retraining/jobs/:name',
    { config: { scope: 'read' }, schema: { operationId: 'getRetrainingJob', summary: 'One retraining job with its last run', tags, params: jobParams, response: { 200: RetrainingJob, 404: ErrorBody } } },
    async (req) => retraining.getJob(req.params.name),
  );
  app.post(
    '/api/v1/retraining/jobs/:name/runs',
    {
      config: { scope: 'deploy', idempotent: { status: 202, find: (made) => retraining.runMadeBy('createdBy', made) } },
      schema: { operationId: 'startRetrainingRun', summary: 'Start a run now (queued behind a running one)', tags, params: jobParams, response: { 202: RetrainingRun, 404: ErrorBody, 409: ErrorBody } },
    },
    async (req, reply) => reply.code(202).send(await retraining.runNow(req.params.name, requestActor(req))),
  );
  app.get(
    '/api/v1/retraining/jobs/:name/runs',
    { config: { scope: 'read' }, schema: { operationId: 'listRetrainingJobRuns', summary: "A job's runs, newest first", tags, params: jobParams, response: { 200: RetrainingRunList, 404: ErrorBody } } },
    async (req) => ({ runs: await retraining.listRuns(req.params.name) }),
  );
  app.get(
    '/api/v1/retraining/runs',
    { config: { scope: 'read' }, schema: { operationId: 'listRetrainingRuns', summary: 'Every run, newest first', tags, response: { 200: RetrainingRunList } } },
    async () => ({ runs: await retraining.listRuns(undefined) }),
  );
  app.get(
    '/api/v1/retraining/runs/:id',
    { config: { scope: 'read' }, schema: { operationId: 'getRetrainingRun', summary: 'One run: status, stage, rows, evaluation, candidate, rollout', tags, params: runParams, response: { 200: RetrainingRun, 404: ErrorBody } } },
    async (req) => retraining.getRun(req.params.id),
  );
  app.get(
    '/api/v1/retraining/runs/:id/log',
    {
      // Not `read`: the log holds users' data (eval answers, the trainer's output), like the dataset export.
      config: { scope: 'deploy' },
      schema: {
        operationId: 'getRetrainingRunLog',
        summary: "The run's log as text; with follow=true it streams until the run ends",
        description: "Deploy scope, not read: the log carries users' data (the models' answers in the evaluation, whatever the trainer prints).",
        tags,
        params: runParams,
        querystring: RunLogQuery,
        response: { 200: { content: { 'text/plain': { schema: Type.String() } } }, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const log = await retraining.log(req.params.id, req.query.follow ?? false);
      req.raw.once('close', () => log.destroy());
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(log as unknown as string);
    },
  );
  app.post(
    '/api/v1/retraining/runs/:id/cancel',
    {
      // A replay answers the run as it is now (200), ended by then in all but a step that stops only once over.
      config: { scope: 'deploy', idempotent: { status: 200, find: (made) => retraining.runMadeBy('cancelledBy', made) } },
      schema: {
        operationId: 'cancelRetrainingRun',
        summary: 'Cancel a queued or running run',
        description:
          '200: the run has ended (cancelled, or another end it reached first). 202: the run is still running (a step that stops only once it is over, such as the candidate image build): it ends cancelled when that step stops; follow it with GET /api/v1/retraining/runs/{id}.',
        tags,
        params: runParams,
        response: { 200: RetrainingRun, 202: RetrainingRun, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const run = await retraining.cancel(req.params.id, requestActor(req));
      req.log.info({ run: run.id, status: run.status, by: requestKey(req).id }, 'retraining run cancel requested');
      return reply.code(ACTIVE_RUN_STATUSES.includes(run.status) ? 202 : 200).send(run);
    },
  );
};
