/**
 * A log followed as the hub writes it (a build's, a retraining run's): one `?follow=true` request
 * whose text arrives as the work goes and ends when it does (at once for finished work). A stream
 * that ends or is cut while the work still runs (a hub restart, a proxy's idle timeout) is followed
 * again from the start; only the last MAX_SHOWN characters are kept on the page.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { ErrorMessage } from './error-message.js';

const MAX_SHOWN = 256 * 1024;
const RETRY_MS = 2000;

interface Shown {
  text: string;
  lines: number;
  /** Characters dropped from the start to keep the page light. */
  omitted: number;
}

type State = { phase: 'following' | 'ended'; error?: Error };

/** Keeps following the end of the log unless the reader scrolled up to read something. */
function atBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 24;
}

function append(shown: Shown, chunk: string): Shown {
  const text = shown.text + chunk;
  const lines = shown.lines + (chunk.match(/\n/g)?.length ?? 0);
  if (text.length <= MAX_SHOWN) return { text, lines, omitted: shown.omitted };
  const cut = text.length - MAX_SHOWN;
  return { text: text.slice(cut), lines, omitted: shown.omitted + cut };
}

const EMPTY: Shown = { text: '', lines: 0, omitted: 0 };

export function LiveLog({ path, label, active = false }: { path: string; label: string; /** The work still runs: a cut stream is followed again. */ active?: boolean }) {
  const [shown, setShown] = useState<Shown>(EMPTY);
  const [state, setState] = useState<State>({ phase: 'following' });
  const [attempt, setAttempt] = useState(0);
  const pre = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  const activeRef = useRef(active);
  activeRef.current = active;

  useEffect(() => {
    setShown(EMPTY);
    setState({ phase: 'following' });
    const abort = new AbortController();
    let retry: ReturnType<typeof setTimeout> | undefined;
    const again = () => {
      retry = setTimeout(() => setAttempt((n) => n + 1), RETRY_MS);
    };
    const follow = async () => {
      const reader = (await api.stream(path, { follow: true }, abort.signal)).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || abort.signal.aborted) break;
        setShown((s) => append(s, value));
      }
    };
    follow().then(
      () => {
        if (abort.signal.aborted) return;
        // The hub ends a followed log when the work ends; an end while the page still sees it running was a cut.
        if (activeRef.current) again();
        else setState({ phase: 'ended' });
      },
      (error: unknown) => {
        if (abort.signal.aborted) return;
        const err = error instanceof Error ? error : new Error(String(error));
        const cut = !(err instanceof ApiError) || err.status === 0 || err.status >= 500;
        if (cut && activeRef.current) {
          setState({ phase: 'following', error: new Error(`the log stream was cut (${err.message}); following it again`) });
          again();
        } else {
          setState({ phase: 'ended', error: err });
        }
      },
    );
    return () => {
      abort.abort();
      clearTimeout(retry);
    };
  }, [path, attempt]);

  useEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [shown]);

  return (
    <div class="live-log">
      <p class="muted">
        {state.phase === 'following' ? `Following the log as it is written · ${shown.lines} lines` : `End of the log · ${shown.lines} lines`}
        {shown.omitted > 0 ? ` · the first ${Math.round(shown.omitted / 1024)} KiB are not shown (the CLI prints the whole log)` : ''}
      </p>
      <ErrorMessage error={state.error} what="The log could not be read" />
      <pre
        class="log"
        ref={pre}
        tabIndex={0}
        role="log"
        aria-live="off"
        aria-label={label}
        onScroll={(e) => {
          stick.current = atBottom(e.currentTarget);
        }}
      >
        {shown.text || (state.phase === 'following' ? 'Waiting for the first line…' : '(the log is empty)')}
      </pre>
    </div>
  );
}
