/** "12 s ago", with the exact time on hover. */
export function ago(ts: string | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  const s = Math.round((now - Date.parse(ts)) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function Ago({ ts }: { ts: string | null | undefined }) {
  if (!ts) return <span class="muted">never</span>;
  // A time the page cannot read is shown as sent rather than breaking the page.
  if (Number.isNaN(Date.parse(ts))) return <span>{ts}</span>;
  return (
    <time dateTime={ts} title={new Date(ts).toISOString()}>
      {ago(ts)}
    </time>
  );
}
