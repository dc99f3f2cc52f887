import type { ApiError } from '../api.js';

/**
 * A failure, shown where its data would be: never a blank chart. Says the server's code and message
 * (e.g. TALLY_BAD_QUERY: "steps[1].window: …"), with a Retry button when one is given.
 */
export function ErrorBox({ error, onRetry }: { error: ApiError | Error; onRetry?: () => void }) {
  const code = 'code' in error ? (error as ApiError).code : 'ERROR';
  return (
    <div class="error-box" role="alert">
      <strong class="error-code">{code}</strong>
      <span class="error-message">{error.message}</span>
      {onRetry && (
        <button type="button" class="button small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
