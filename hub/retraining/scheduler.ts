/**
 * When scheduled jobs fire: node-cron in the hub, a fake in tests (which fires a job at will, so a
 * schedule is tested without waiting for the clock to reach it).
 */
import cron from 'node-cron';

export interface ScheduledTask {
  stop(): void;
}

export interface Scheduler {
  validate(expression: string): boolean;
  schedule(expression: string, fire: () => void): ScheduledTask;
}

export const cronScheduler: Scheduler = {
  validate: (expression) => cron.validate(expression),
  schedule: (expression, fire) => {
    const task = cron.schedule(expression, fire, { noOverlap: true });
    return { stop: () => void task.stop() };
  },
};
