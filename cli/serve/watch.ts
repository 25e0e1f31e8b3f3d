/**
 * Watches the files `serve` was given and calls `onChange` once things settle. Files are watched
 * through their directory (an editor saving by rename replaces the file), model directories
 * recursively.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export const DEBOUNCE_MS = 300;

export async function watchPaths(paths: readonly string[], onChange: () => void, debounceMs = DEBOUNCE_MS): Promise<() => void> {
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const watchers: FSWatcher[] = [];
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
  for (const w of watchers) w.on('error', () => undefined);
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
