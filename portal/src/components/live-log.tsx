/**
 * A log followed as the hub writes it (a build's, a retraining run's): one `?follow=true` request
 * whose text arrives as the work goes and ends when it does (at once for finished work). The text
 * streams, so this is a fetch of its own beside api.ts, with the same bearer key and error reading.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, errorOf } from '../api.js';
import { currentKey } from '../session-store.js';
import { ErrorMessage } from './error-message.js';

type State = { phase: 'following' | 'ended'; error?: Error };

/** Keeps following the end of the log unless the reader scrolled up to read something. */
function atBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 24;
}

export function LiveLog({ path, label }: { path: string; label: string }) {
  const [text, setText] = useState('');
  const [state, setState] = useState<State>({ phase: 'following' });
  const pre = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    setText('');
    setState({ phase: 'following' });
    const abort = new AbortController();
    const follow = async () => {
      const key = currentKey();
      const res = await fetch(`${path}?follow=true`, { headers: key ? { authorization: `Bearer ${key}` } : {}, signal: abort.signal });
      if (!res.ok) throw await errorOf(res);
      if (!res.body) throw new ApiError(res.status, 'empty', 'the hub sent no log');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        setText((t) => t + value);
      }
    };
    follow().then(
      () => setState({ phase: 'ended' }),
      (error: unknown) => {
        if (abort.signal.aborted) return;
        setState({ phase: 'ended', error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
    return () => abort.abort();
  }, [path]);

  useEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [text]);

  const lines = text === '' ? 0 : text.split('\n').filter(Boolean).length;
  return (
    <div class="live-log">
      <p class="muted">
        {state.phase === 'following' ? `Following the log as it is written · ${lines} lines` : `End of the log · ${lines} lines`}
      </p>
      <ErrorMessage error={state.error} what="The log could not be read" />
      <pre
        class="log"
        ref={pre}
        tabIndex={0}
        aria-label={label}
        onScroll={(e) => {
          stick.current = atBottom(e.currentTarget);
        }}
      >
        {text || (state.phase === 'following' ? 'Waiting for the first line…' : '(the log is empty)')}
      </pre>
    </div>
  );
}
