/**
 * How deep a parsed JSON value nests. `JSON.parse` takes any depth, but whatever walks a value
 * recursively afterwards (`JSON.stringify`, structured clone, ajv) overflows the stack on a
 * document a few thousand levels deep; so depth is checked once, without recursion, where such a
 * value comes in.
 */

/** The path of the first place nested deeper than `max` levels (`root.a[3].b`), or null. */
export function tooDeepAt(value: unknown, max: number, root: string): string | null {
  const pending: Array<{ value: unknown; depth: number; path: string }> = [{ value, depth: 0, path: root }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (next.value === null || typeof next.value !== 'object') continue;
    if (next.depth >= max) return next.path;
    const isArray = Array.isArray(next.value);
    for (const [key, child] of Object.entries(next.value)) pending.push({ value: child, depth: next.depth + 1, path: isArray ? `${next.path}[${key}]` : `${next.path}.${key}` });
  }
  return null;
}
