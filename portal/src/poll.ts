/**
 * Live pages: load now, then again every interval while the tab is visible (and at once when it
 * becomes visible again). One load at a time per page: a wake-up during a load waits for it rather
 * than starting a second loop. A failed reload keeps the last data and reports the error beside it.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data?: T | undefined;
  error?: Error | undefined;
  reload(): void;
}

interface Loaded<T> {
  /** Which inputs the data belongs to: another device's data is never shown as this one's. */
  key: string;
  data?: T | undefined;
  error?: Error | undefined;
}

export function usePoll<T>(load: () => Promise<T>, intervalMs: number, deps: unknown[]): Polled<T> {
  const key = JSON.stringify(deps);
  const [state, setState] = useState<Loaded<T>>({ key });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    let live = true;
    let inFlight = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      clearTimeout(timer);
      timer = undefined;
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      try {
        const data = await loadRef.current();
        if (live) setState({ key, data });
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (live) setState((s) => ({ key, data: s.key === key ? s.data : undefined, error }));
      } finally {
        inFlight = false;
      }
      if (!live) return;
      if (again) {
        again = false;
        return run();
      }
      if (intervalMs > 0) timer = setTimeout(() => (document.hidden ? undefined : void run()), intervalMs);
    };
    const onVisible = () => {
      if (!document.hidden && live) void run();
    };
    void run();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      live = false;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [key, tick, intervalMs]);

  return state.key === key ? { data: state.data, error: state.error, reload } : { reload };
}
