import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProblemList, type Problem } from '../../shared/api/problems.js';

export const problemRoutes: FastifyPluginAsyncTypebox<{ problems: { list(): Problem[] } }> = async (app, { problems }) => {
  app.get(
    '/api/v1/problems',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listProblems',
        summary: 'Stored records the hub skips because they no longer validate',
        description:
          'A deployment whose limits devices would refuse, a desired state that cannot be sent, a damaged device record: the hub keeps serving the rest of the fleet, reports each here (and `/healthz` says `degraded`), and leaves the record in the store to be fixed.',
        tags: ['hub'],
        response: { 200: ProblemList },
      },
    },
    async () => ({ problems: problems.list() }),
  );
};
