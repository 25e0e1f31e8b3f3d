/**
 * The archive's scheduled upkeep, as node-cron jobs in UTC (the archive's days are UTC days):
 * retention deletes days past the limit, compaction gzips closed days (every day before
 * yesterday: yesterday stays plain for batches still on their way). Retention also runs once at
 * start, so a hub that was down at the scheduled time does not keep expired data for another day.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { TelemetryArchive } from './archive.js';
import { DAY_MS } from './layout.js';

export const DEFAULT_RETENTION_SCHEDULE = '17 0 * * *';
export const DEFAULT_COMPACTION_SCHEDULE = '37 0 * * *';

export interface TelemetryJobsOptions {
  archive: Pick<TelemetryArchive, 'expire' | 'compact'>;
  retentionDays: number;
  clock: Clock;
  logger: Logger;
  /** Cron expressions (node-cron, with an optional seconds field), UTC. */
  schedule?: { retention?: string; compaction?: string };
}

export interface TelemetryJobs {
  runRetention(): Promise<{ removed: string[] }>;
  runCompaction(): Promise<{ days: number; files: number }>;
  /** Stops the schedule and waits for a run in progress. */
  stop(): Promise<void>;
}

export function startTelemetryJobs(o: TelemetryJobsOptions): TelemetryJobs {
  const schedule = { retention: DEFAULT_RETENTION_SCHEDULE, compaction: DEFAULT_COMPACTION_SCHEDULE, ...o.schedule };
  for (const [job, expression] of Object.entries(schedule)) {
    if (!cron.validate(expression)) throw new RangeError(`telemetry ${job} schedule ${JSON.stringify(expression)} is not a cron expression`);
  }
  const running = new Set<Promise<unknown>>();
  /** A failed run is logged and tried again at its next time: the data waits, nothing is lost. */
  const track = <T>(job: string, run: () => Promise<T>): Promise<T> => {
    const p = run();
    running.add(p);
    p.then(
      (result) => o.logger.info({ job, result }, 'telemetry job done'),
      (err: unknown) => o.logger.error({ err, job }, 'telemetry job failed; it runs again at its next scheduled time'),
    ).finally(() => running.delete(p));
    return p;
  };
  const jobs: TelemetryJobs = {
    runRetention: () => track('retention', () => o.archive.expire(o.retentionDays)),
    runCompaction: () => track('compaction', () => o.archive.compact(new Date(o.clock.now() - DAY_MS))),
    stop: async () => {
      for (const task of tasks) await task.destroy();
      await Promise.allSettled([...running]);
    },
  };
  const options = { timezone: 'UTC', noOverlap: true };
  const tasks: ScheduledTask[] = [
    cron.schedule(schedule.retention, () => jobs.runRetention().catch(() => {}), { ...options, name: 'telemetry-retention' }),
    cron.schedule(schedule.compaction, () => jobs.runCompaction().catch(() => {}), { ...options, name: 'telemetry-compaction' }),
  ];
  void jobs.runRetention().catch(() => {});
  return jobs;
}
