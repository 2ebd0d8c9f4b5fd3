// Deleting one's account: the password asked again, the server's refusals
// as sentences, and what the sign-in page says once the account is gone.

import { ApiError } from './api';
import { errorText, formatWait } from './errors';

/** ACCOUNT_DELETED_NOTICE is shown on the sign-in page of every tab once the account is gone. */
export const ACCOUNT_DELETED_NOTICE = 'Your account and all its conversations were deleted.';

/** deletePasswordProblem says why the password cannot be sent yet, or returns null. */
export function deletePasswordProblem(password: string): string | null {
  return password ? null : 'Enter your password to delete your account.';
}

/**
 * deleteAccountErrorText explains a refused deletion: the server's words as
 * a sentence (a wrong password, a refused field), a wait after repeated
 * failures, or why the server could not be asked.
 */
export function deleteAccountErrorText(err: unknown): string {
  if (!(err instanceof ApiError) || err.status === 0) return errorText(err);
  if (err.status === 429) {
    return `Too many attempts.${err.retryAfter !== undefined ? ` Try again in ${formatWait(err.retryAfter)}.` : ' Try again later.'}`;
  }
  const field = err.code === 'invalid_field' ? /^(\w+):\s*(.+)$/.exec(err.message) : null;
  if (field) return sentence(`the ${field[1]} ${field[2]}`);
  const text = sentence(err.message);
  return err.status === 503 ? `${text} Your account was not deleted.` : text;
}

/** sentence starts text with a capital and ends it with a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
