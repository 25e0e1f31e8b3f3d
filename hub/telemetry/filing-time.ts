/**
 * The time a record is filed under (its day file, and what time-range queries match). The
 * device's own time, so that a batch a cut-off device sends days later lands on its own day; but
 * not where the archive cannot keep it. A device clock years behind would file a batch under a
 * day retention deletes at its next run, and one more than a day ahead under days to come: such a
 * record is filed at the hub's receive time instead. Its data keeps the device's own times.
 */
import { oldestKeptDay } from './retention.js';

/** A device clock this far ahead of the hub's is wrong, not early. */
export const MAX_CLOCK_AHEAD_MS = 24 * 60 * 60 * 1000;

export interface FilingWindow {
  /** The hub's clock when the batch was received. */
  now: number;
  /** Midnight UTC of the oldest day retention keeps. */
  oldestKept: number;
}

export function filingWindow(now: number, retentionDays: number): FilingWindow {
  return { now, oldestKept: oldestKeptDay({ days: retentionDays, now: new Date(now) }) };
}

/** `deviceTs` when the archive can keep a record there, else the receive time. */
export function filingTime(deviceTs: number, { now, oldestKept }: FilingWindow): number {
  return deviceTs < oldestKept || deviceTs > now + MAX_CLOCK_AHEAD_MS ? now : deviceTs;
}
