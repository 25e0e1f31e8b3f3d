const TONE: Record<string, string> = {
  online: 'good', passed: 'good', converged: 'good', succeeded: 'good', healthy: 'good', ready: 'good', promoted: 'good', serving: 'good',
  offline: 'warn', paused: 'warn', retrying: 'warn', 'completed-with-failures': 'warn', testing: 'info', pulling: 'info', starting: 'info', reconciling: 'info', running: 'info', building: 'info', queued: 'info', pending: 'info', moving: 'info', 'rolling-back': 'warn',
  failed: 'bad', revoked: 'bad', aborted: 'bad', 'rolled-back': 'bad', rejected: 'bad', cancelled: 'muted', superseded: 'muted', 'never-connected': 'muted', idle: 'muted',
};

/** A status word with a colour that repeats, never replaces, the word. */
export function StatusBadge({ status }: { status: string | null | undefined }) {
  const text = status ?? 'unknown';
  return <span class={`badge ${TONE[text] ?? 'muted'}`}>{text}</span>;
}
