/** A content digest shortened to its first 12 hex digits (as docker does), the whole one on hover. */
export function shortDigest(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  return hex.slice(0, 12);
}

export function Digest({ value }: { value: string | null | undefined }) {
  if (!value) return <span class="muted">—</span>;
  return (
    <code title={value} class="digest">
      {shortDigest(value)}
    </code>
  );
}
