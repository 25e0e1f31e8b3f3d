/**
 * Live pages: load now, then again every interval while the tab is visible (and at once when it
 * becomes visible again). A failed reload keeps the last data and reports the error beside it.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data?: T | undefined;
  error?: Error | undefined;
  reload(): void;
}

export function usePoll<T>(load: () => Promise<T>, intervalMs: number, deps: unknown[]): Polled<T> {
  const [state, setState] = useState<{ data?: T | undefined; error?: Error | undefined }>({});
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => setTick((n) => n + 1), []);

  // New inputs (another device, another range): old data is not shown as if it were theirs.
  useEffect(() => setState({}), deps);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await loadRef.current();
        if (live) setState({ data });
      } catch (e) {
        if (live) setState((s) => ({ data: s.data, error: e instanceof Error ? e : new Error(String(e)) }));
      }
      if (live && intervalMs > 0) timer = setTimeout(() => (document.hidden ? undefined : run()), intervalMs);
    };
    const onVisible = () => {
      if (!document.hidden && live) {
        clearTimeout(timer);
        void run();
      }
    };
    void run();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      live = false;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [...deps, tick, intervalMs]);

  return { ...state, reload };
}
