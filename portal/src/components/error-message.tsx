import { ApiError } from '../api.js';

/** An API or network failure as a sentence, announced to screen readers. */
export function ErrorMessage({ error, what }: { error: Error | undefined; what?: string }) {
  if (!error) return null;
  const detail = error instanceof ApiError && error.status > 0 ? ` (${error.status} ${error.code})` : '';
  return (
    <p class="error" role="alert">
      {what ? `${what}: ` : ''}
      {error.message}
      {detail}
    </p>
  );
}
