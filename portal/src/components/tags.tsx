/** KEY=VALUE tags as small chips, in key order. */
import './tags.css';

export function Tags({ tags }: { tags: Record<string, string> }) {
  const entries = Object.entries(tags).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span class="tags">
      {entries.map(([k, v]) => (
        <code key={k} class="tag">
          {k}={v}
        </code>
      ))}
    </span>
  );
}
