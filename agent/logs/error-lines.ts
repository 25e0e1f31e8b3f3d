/**
 * Which container lines `shipLogs: error` sends, and how many per second. A JSON line with a level
 * is judged by its level whatever its stream (pino and the edgeml runtimes log every level on
 * stdout, some loggers all on stderr); any other line is an error when it came on stderr.
 */
import type { Clock } from '../../shared/clock.js';

/** pino's numeric levels: error is 50, fatal 60. */
const ERROR_LEVEL = 50;
const ERROR_NAMES = new Set(['error', 'fatal', 'critical', 'panic', 'emergency', 'alert', 'crit', 'err']);

/** Before JSON.parse: a busy logger's info lines are not parsed whole on the device only to be skipped. */
const HAS_LEVEL = /"(?:level|severity|levelname)"\s*:/;

function levelOf(line: string): unknown {
  if (!line.trimStart().startsWith('{') || !HAS_LEVEL.test(line)) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const v = value as Record<string, unknown>;
    return v.level ?? v.severity ?? v.levelname;
  } catch {
    return undefined;
  }
}

export function isErrorLine(stream: 'stdout' | 'stderr', line: string): boolean {
  const level = levelOf(line);
  if (typeof level === 'number') return level >= ERROR_LEVEL;
  if (typeof level === 'string') return ERROR_NAMES.has(level.toLowerCase());
  return stream === 'stderr';
}

/**
 * A token bucket over lines that never waits: a line beyond it is refused (the caller counts it as
 * dropped), so a container in an error loop cannot fill the queue or hold up its reader.
 */
export class LineRateLimit {
  #tokens: number;
  #at: number;

  constructor(private readonly o: { perSecond: number; burst: number; clock: Clock }) {
    this.#tokens = o.burst;
    this.#at = o.clock.now();
  }

  tryTake(): boolean {
    const now = this.o.clock.now();
    this.#tokens = Math.min(this.o.burst, this.#tokens + ((now - this.#at) * this.o.perSecond) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
