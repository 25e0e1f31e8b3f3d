/**
 * Watches the files `serve` was given and calls `onChange` once things settle. Files are watched
 * through their directory (an editor saving by rename replaces the file), model directories
 * recursively.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export const DEBOUNCE_MS = 300;

export interface WatchHandlers {
  onChange(): void;
  /** A watcher failed: every watcher is closed by then (no more onChange). */
  onError(err: Error): void;
}

export async function watchPaths(paths: readonly string[], handlers: WatchHandlers, debounceMs = DEBOUNCE_MS): Promise<() => void> {
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(handlers.onChange, debounceMs);
  };
  const watchers: FSWatcher[] = [];
  const close = () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
  try {
    const fileNames = new Map<string, Set<string>>();
    for (const path of paths) {
      if ((await stat(path)).isDirectory()) {
        watchers.push(watch(path, { recursive: true }, changed));
      } else {
        const names = fileNames.get(dirname(path)) ?? new Set<string>();
        names.add(basename(path));
        fileNames.set(dirname(path), names);
      }
    }
    for (const [dir, names] of fileNames) {
      watchers.push(watch(dir, (_event, name) => (name === null || names.has(String(name)) ? changed() : undefined)));
    }
  } catch (err) {
    close();
    throw err;
  }
  let failed = false;
  for (const w of watchers) {
    w.on('error', (err) => {
      close();
      // One report: closing the others can make them fail too.
      if (!failed) handlers.onError(err);
      failed = true;
    });
  }
  return close;
}
