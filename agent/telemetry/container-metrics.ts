/**
 * One `ContainerMetrics` per running container of this device's agent, named by the service and
 * revision on its labels. A container whose stats fail is still listed, with nulls: that it runs
 * is itself worth reporting.
 */
import type { Logger } from '../../shared/logger.js';
import { SERVICE_NAME_PATTERN, type ContainerMetrics } from '../../shared/protocol.js';
import type { ContainerRuntime, ContainerStats } from '../runtime/container-runtime.js';

const UNKNOWN: ContainerStats = { cpuPercent: null, memoryBytes: null, memoryLimitBytes: null };
/** The protocol's bound; an agent runs one container per service, two during a switch. */
const MAX_CONTAINERS = 256;
const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN);

export async function containerMetrics(runtime: Pick<ContainerRuntime, 'list' | 'containerStats'>, deviceId: string, logger: Logger): Promise<ContainerMetrics[]> {
  let containers;
  try {
    containers = await runtime.list(deviceId);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'cannot list containers for telemetry; the batch has none');
    return [];
  }
  // Labels edited by hand would make the whole batch invalid: such a container is left out.
  const running = containers.filter((c) => c.running && SERVICE_NAME.test(c.service) && Number.isSafeInteger(c.revision) && c.revision >= 1).slice(0, MAX_CONTAINERS);
  return Promise.all(
    running.map(async (c) => {
      const stats = await runtime.containerStats(c.id).catch((err: unknown) => {
        logger.debug({ container: c.name, err: (err as Error).message }, 'container stats failed; sent as null');
        return UNKNOWN;
      });
      return { service: c.service, revision: c.revision, ...stats };
    }),
  );
}
