/** A query's time bound (`since=7d`, `until=2024-05-01T00:00:00Z`) as the hub reads it. */
import { parseTimeBound } from '../../shared/api/telemetry.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/** Beyond ±8.64e15 ms a Date is invalid: `since=99999999999d` is a bad request, not a crash. */
const MAX_DATE_MS = 8.64e15;

/** `text`, a duration back from `now` or a date-time, in ms since the epoch; a 400 naming the parameter otherwise. */
export function timeBound(name: string, text: string, now: number): number {
  const ms = parseTimeBound(text, now);
  if (ms === undefined || Math.abs(ms) > MAX_DATE_MS) {
    throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `${name} ${JSON.stringify(text)} is not a duration (1h, 7d) or a date-time`, { httpStatus: 400 });
  }
  return ms;
}
