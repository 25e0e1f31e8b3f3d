/**
 * `shipLogs` on the hub and in the CLI: a deployment stored before it existed reads as off, the
 * desired service carries it only when on (older agents refuse a field they do not know), and
 * `--ship-logs` goes into deploy and service update requests alone or with other changes.
 */
import test from 'ava';
import { deployRequest, updateRequest, modelUpdateRequest } from '../../cli/commands/deployments.js';
import { publicDeployment } from '../../hub/fleet/deployments.js';
import { desiredService } from '../../hub/fleet/desired-states.js';
import type { DeploymentRecord } from '../../hub/store/store.js';
import { IMAGE, NOW, storedDeployment } from '../helpers/stored-deployment.js';
import { ServiceUpdate } from '../../shared/api/deployments.js';
import { compileChecker } from '../../shared/schema.js';

/** As stored before log shipping existed: no `shipLogs` field. */
const stored = storedDeployment;

test('a deployment stored without shipLogs reads as off, and its devices get no shipLogs field', (t) => {
  t.is(publicDeployment(stored).shipLogs, 'off');
  t.false('shipLogs' in desiredService(stored, 'gw-1', NOW)!);
  t.false('shipLogs' in desiredService({ ...stored, shipLogs: 'off' }, 'gw-1', NOW)!);
});

test('shipLogs error rides along on every revision, without a new one', (t) => {
  const on: DeploymentRecord = { ...stored, shipLogs: 'error' };
  t.deepEqual(desiredService(on, 'gw-1', NOW), { ...desiredService(stored, 'gw-1', NOW)!, shipLogs: 'error' });
  t.is(publicDeployment(on).shipLogs, 'error');
  t.is(publicDeployment(on).revision, 1);
});

test('the API takes shipLogs error or off on an update, nothing else', (t) => {
  const check = compileChecker(ServiceUpdate);
  t.true(check({ shipLogs: 'error' }).ok);
  t.true(check({ shipLogs: 'off' }).ok);
  t.false(check({ shipLogs: 'warn' }).ok);
});

test('--ship-logs goes into deploy and service update requests; alone it is a change; not with --model', (t) => {
  const image = IMAGE;
  t.is(deployRequest('iris', { image, target: [], shipLogs: 'error' } as Parameters<typeof deployRequest>[1]).shipLogs, 'error');
  t.false('shipLogs' in deployRequest('iris', { image, target: [] } as Parameters<typeof deployRequest>[1]));
  t.deepEqual(updateRequest({ shipLogs: 'off' }), { shipLogs: 'off' });
  t.deepEqual(updateRequest({ shipLogs: 'error', replicas: 2 }), { replicas: 2, shipLogs: 'error' });
  t.throws(() => modelUpdateRequest({ model: { name: 'iris', ref: '2' }, shipLogs: 'error' }), { message: /--ship-logs/ });
});
