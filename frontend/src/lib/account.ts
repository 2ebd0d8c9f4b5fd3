// The account dialog's two requests: changing the password (the current one
// asked again, the new one under registration's rules) and deleting the
// account (the password asked again), with the server's refusals as
// sentences and what is said afterwards.

import { ApiError } from './api';
import type { EndNotice } from './persist';
import { errorText, formatWait, sentence } from './errors';
import { fieldProblem, passwordProblem } from './password';

/** ACCOUNT_DELETED_NOTICE is shown on the sign-in page of every tab once the account is gone. */
export const ACCOUNT_DELETED_NOTICE = 'Your account and all its conversations were deleted.';

/**
 * ACCOUNT_DELETING_NOTICE is shown instead when the server answered 202:
 * the account is signed out everywhere and can no longer be used, while
 * its conversations are still being removed (the server finishes that on
 * its own, docs/api.md).
 */
export const ACCOUNT_DELETING_NOTICE =
  'Your account was deleted and signed out everywhere. Removing its conversations is still finishing on the server.';

/**
 * ACCOUNT_NOT_DELETED is the sign-in page's notice when the server failed
 * a deletion (its own 5xx) after it had signed the account out everywhere
 * (the socket closed "account deleted" before the answer): the account is
 * in place, signed out (docs/api.md).
 */
export const ACCOUNT_NOT_DELETED =
  'Your account was not deleted: the server failed partway, after signing it out everywhere. Sign in and delete it again; your unsent text is kept.';

/**
 * ACCOUNT_DELETION_UNKNOWN is said instead when no answer of the server's
 * came (the network, a proxy's bare status) after the account was signed
 * out everywhere: it may or may not be deleted.
 */
export const ACCOUNT_DELETION_UNKNOWN =
  'You were signed out everywhere, and no answer came to say whether your account was deleted. Sign in to find out: if it is still there, delete it again. Your unsent text is kept.';

/**
 * ACCOUNT_DELETION_SIGNED_OUT is said by a tab that did not ask for the
 * deletion when its socket closes "account deleted": the server closes
 * them before it removes the account, which may still fail and leave it
 * in place, signed out. Its unsent texts are kept, as for an expiry.
 */
export const ACCOUNT_DELETION_SIGNED_OUT =
  'You were signed out: this account is being deleted, from another tab or device. If the deletion did not go through, sign in again; your unsent text is kept.';

/**
 * SHARED_NOTICES are the notices of a deletion's outcome the other tabs of
 * the browser say too when they follow the asking tab's end of the
 * session (Persist.endNotice): only the asking tab got the answer.
 */
export const SHARED_NOTICES: Record<EndNotice, string> = {
  accountNotDeleted: ACCOUNT_NOT_DELETED,
  accountDeletionUnknown: ACCOUNT_DELETION_UNKNOWN,
  accountDeleting: ACCOUNT_DELETING_NOTICE,
};

/** sharedNotice names notice among SHARED_NOTICES, or returns null. */
export function sharedNotice(notice: string | null): EndNotice | null {
  return (Object.keys(SHARED_NOTICES) as EndNotice[]).find((n) => SHARED_NOTICES[n] === notice) ?? null;
}

/**
 * deletionCutNotice is what to say when a deletion was refused after the
 * session was signed out meanwhile (its socket closed, its token
 * refused): the server's own 5xx left the account in place
 * (ACCOUNT_NOT_DELETED), no answer of the server's leaves the outcome
 * unknown (ACCOUNT_DELETION_UNKNOWN); null for any other refusal.
 */
export function deletionCutNotice(err: unknown): string | null {
  if (!(err instanceof ApiError) || err.status === 0) return ACCOUNT_DELETION_UNKNOWN;
  if (err.status < 500) return null;
  return err.code.startsWith('http_') ? ACCOUNT_DELETION_UNKNOWN : ACCOUNT_NOT_DELETED; // http_NNN: a proxy's, not the server's
}

/** PASSWORD_CHANGED is said in the dialog once the new password is set; this browser stays signed in. */
export const PASSWORD_CHANGED = 'Password changed. Other devices were signed out.';

/** PasswordField names a field of the password change form. */
export type PasswordField = 'currentPassword' | 'newPassword';

/**
 * Refusal is why an account action was not made, in plain words; after
 * repeated failures (429 with Retry-After) also for how many seconds: its
 * "Try again in N seconds" is out of date once they are over.
 */
export interface Refusal {
  text: string;
  retryAfter?: number;
}

/** PasswordRefusal is why a password change was not made, and the field it concerns (null: none). */
export interface PasswordRefusal extends Refusal {
  field: PasswordField | null;
  /** unknown: the change may have been saved (its outcome could not be told). */
  unknown?: boolean;
}

const CHANGED_MEANWHILE =
  'Your password was not changed: the password was changed, or the account signed out, elsewhere at the same moment. If you are still signed in, try again.';

const CHANGE_UNKNOWN =
  'Your password may not have been changed: the server could not tell whether it was saved. If you are still signed in, try again; if you were signed out, sign in with the new password.';

/** changePasswordProblem says why the change cannot be sent yet, or returns null. */
export function changePasswordProblem(currentPassword: string, newPassword: string): PasswordRefusal | null {
  if (!currentPassword) return { field: 'currentPassword', text: 'Enter your current password.' };
  const problem = passwordProblem(newPassword);
  return problem ? { field: 'newPassword', text: problem } : null;
}

/**
 * changePasswordRefusal explains a refused password change: a wrong current
 * password, a field the server refused (on that field), a wait after
 * repeated failures, a change or sign-out elsewhere at the same moment
 * (409, or a 401 for the token sent), a change the server could not tell
 * was saved (a 503 saying it may have been changed, or no answer in
 * time), a busy server, or why the server could not be asked.
 */
export function changePasswordRefusal(err: unknown): PasswordRefusal {
  // Given up unanswered: the server may have set it meanwhile.
  if (err instanceof ApiError && err.code === 'timeout') return { field: null, text: CHANGE_UNKNOWN, unknown: true };
  if (!(err instanceof ApiError) || err.status === 0) return { field: null, text: errorText(err) };
  if (err.status === 401 && /wrong password/i.test(err.message)) return { field: 'currentPassword', text: 'The current password is wrong.' };
  if (err.status === 429) return { field: null, text: tooManyAttempts(err), ...waitOf(err) };
  // 409: the token version moved between the check and the write. Another
  // tab of this browser may have made the change that won: the session then
  // goes on with its token, so "sign in again" may not apply. A 401 for the
  // token sent is the same race lost earlier (the caller shows it only while
  // still signed in: another tab's new token adopted meanwhile).
  if (err.status === 409 || err.tokenRefused) return { field: null, text: CHANGED_MEANWHILE };
  // 503 whose write may have landed (its reply lost in a database failover)
  // and the account could not be read again: not "was not changed".
  if (err.status === 503 && /may have been changed/i.test(err.message)) return { field: null, text: CHANGE_UNKNOWN, unknown: true };
  const field = err.code === 'invalid_field' ? /^(currentPassword|newPassword):\s*(.+)$/.exec(err.message) : null;
  if (field?.[1] === 'newPassword') return { field: 'newPassword', text: fieldProblem(err.message) ?? sentence(`the new password ${field[2]}`) };
  if (field) return { field: 'currentPassword', text: field[2] === 'is required' ? 'Enter your current password.' : sentence(`the current password ${field[2]}`) };
  const text = sentence(errorText(err)); // a proxy's bare status worded
  return { field: null, text: err.status === 503 ? `${text} Your password was not changed.` : text };
}

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
  if (err.status === 429) return tooManyAttempts(err);
  const field = err.code === 'invalid_field' ? /^(\w+):\s*(.+)$/.exec(err.message) : null;
  if (field) return sentence(`the ${field[1]} ${field[2]}`);
  const text = sentence(errorText(err)); // a proxy's bare status worded
  return err.status === 503 ? `${text} Your account was not deleted.` : text;
}

/** deleteAccountRefusal is a refused deletion (deleteAccountErrorText) with the wait it asks for. */
export function deleteAccountRefusal(err: unknown): Refusal {
  return { text: deleteAccountErrorText(err), ...(err instanceof ApiError && err.status === 429 ? waitOf(err) : {}) };
}

/** waitOf is the server's Retry-After of a 429, when it gave one. */
function waitOf(err: ApiError): { retryAfter?: number } {
  return err.retryAfter ? { retryAfter: err.retryAfter } : {};
}

/** tooManyAttempts says when to try again after repeated failures (429). */
function tooManyAttempts(err: ApiError): string {
  return `Too many attempts.${err.retryAfter !== undefined ? ` Try again in ${formatWait(err.retryAfter)}.` : ' Try again later.'}`;
}

