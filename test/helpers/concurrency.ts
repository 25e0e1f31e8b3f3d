/**
 * At most `n` tasks at once; the others wait their turn, first come first served. For tests that
 * start many processes at once: a test file's tests all start together, and a storm of process
 * start-ups on a 2-core machine makes each one's own deadline meaningless.
 */
export function limitConcurrency(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
