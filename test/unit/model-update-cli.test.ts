/** `service update --model`: the request body, and the flags it refuses beside it. */
import test from 'ava';
import { modelUpdateRequest } from '../../cli/commands/deployments.js';
import { ErrorCodes } from '../../shared/errors.js';

test('--model with rollout flags: the model as given and the rollout', (t) => {
  t.deepEqual(modelUpdateRequest({ model: { name: 'iris', ref: '2' } }), { model: 'iris:2' });
  t.deepEqual(modelUpdateRequest({ model: { name: 'iris', ref: '@prod' }, strategy: 'canary', canary: '1', soak: '2s' }), {
    model: 'iris@prod',
    rollout: { strategy: 'canary', canary: '1', soak: '2s' },
  });
});

test('--model goes without --image, --build, --target, limits and replicas, naming them', (t) => {
  const err = t.throws(() => modelUpdateRequest({ model: { name: 'iris', ref: '2' }, build: 3, maxConcurrent: 2, target: [{ key: 'a', value: 'b' }] }));
  t.is((err as { code?: string }).code, ErrorCodes.CLI_INPUT_INVALID);
  t.regex(err!.message, /give --build, --target, --max-concurrent in another service update/);
});
