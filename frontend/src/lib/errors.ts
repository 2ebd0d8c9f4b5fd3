// How failures read to a person, and which ones a retry can cure.

import { ApiError } from './api';
import { formatDuration } from './time';

/** sentence starts text with a capital and ends it with a full stop unless it ends a sentence already. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * RETRY_ADVICE is a last clause that only says to ask again ("; try again in
 * a moment", "; retry", ", try again later."), as chatd ends many refusals.
 * ("; reconnect" too, a close reason). A clause that says more ("; try
 * again later, or pick another model") is not one.
 */
const RETRY_ADVICE = /\s*[;,]\s*(?:please\s+)?(?:try again|retry|retrying|reconnect|reconnecting|wait)(?:\s+(?:later|shortly|soon|a moment|a bit|in a (?:moment|minute|while|few seconds)|in \d+\s*[a-z]*|after \d+\s*[a-z]*))?\s*[.!]?$/i;

/**
 * withoutRetryAdvice drops the server's last clause telling to ask again,
 * for where the client says when it asks again or how long to wait:
 * "too many searches; try again in a moment" is "too many searches".
 */
export function withoutRetryAdvice(text: string): string {
  const t = text.trim();
  const rest = t.replace(RETRY_ADVICE, '');
  return rest ? rest : t;
}

/**
 * waitReason is chatd's reason for not taking a request yet, as a sentence
 * for where the client says itself when it asks again: its own "; retry"
 * or "; try again in a moment" is dropped ("The server is shutting down.").
 */
export function waitReason(why: string): string {
  return sentence(withoutRetryAdvice(why));
}

/**
 * refusedField says err is an instance of the version before (a rolling
 * upgrade) refusing a request whole for a field it does not know (400
 * bad_request, `unknown field "name"`: its strict decoding). Asked again
 * without the field, the request does what that version's did.
 */
export function refusedField(err: unknown, name: string): boolean {
  return err instanceof ApiError && err.status === 400 && err.code === 'bad_request' && err.message.includes(`unknown field "${name}"`);
}

/** UNREACHABLE is how a proxy's 502/503/504 reads: chatd is down or restarting behind it. */
export const UNREACHABLE = 'The server cannot be reached or is restarting; try again in a moment.';

/** SERVER_FAULT is how a 500 reads: the server failed, a retry may do, else its administrator can look. */
export const SERVER_FAULT = 'Something went wrong on the server. Try again; if it keeps happening, tell your administrator.';

/**
 * errorText returns a message fit for the user. An answer that carries no
 * words of chatd's (a proxy's status line, empty over HTTP/2, or "HTTP 502")
 * is never shown as its bare status: a 502/503/504 is the server out of
 * reach or restarting, a 500 (chatd's "internal server error" too) a fault
 * to retry or report, any other the status with what it means. A rate
 * limit with its Retry-After names the wait (waitText).
 */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429 && err.retryAfter !== undefined) return waitText(err.message, err.retryAfter);
    if (err.code === 'internal') return SERVER_FAULT;
    if (err.code === `http_${err.status}`) return statusText(err.status);
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * waitText is a rate limit's message with the wait it came with, one
 * sentence: the server's own advice to ask again ("; try again in a
 * moment") gives way to the wait ("Too many searches; try again in 30
 * seconds.").
 */
function waitText(message: string, seconds: number): string {
  return sentence(`${withoutRetryAdvice(message)}; try again in ${formatWait(seconds)}`);
}

/** statusText words an HTTP status that came without chatd's JSON error body (a proxy's page, an empty body). */
function statusText(status: number): string {
  if (status === 502 || status === 503 || status === 504) return UNREACHABLE;
  if (status >= 500) return SERVER_FAULT;
  if (status === 413) return 'This request is too large for the server (HTTP 413).';
  return `The server refused this request (HTTP ${status}). Reload the page and try again.`;
}

/**
 * isConnectionError says whether err means the server was not reached,
 * went away or could not take the request for a moment (no answer, a lost
 * socket, a proxy's 502/503/504, chatd's own 503: a shutdown, a request it
 * could not get through in time; over the WebSocket the same refusal is an
 * error frame with code unavailable, status 0 here): the request may be
 * repeated, with its key, once connected. Any other answer from chatd (a
 * refused message, a rate limit) is not one.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 0) return err.code === 'network' || err.code === 'timeout' || err.code === 'unavailable';
  return err.status === 502 || err.status === 503 || err.status === 504;
}

/**
 * serverUnavailable is chatd's own message when it refused a request for
 * now, code unavailable (an error frame over the WebSocket or an event
 * stream, or its JSON 503): the server is up and answered, but cannot take
 * the request yet (no model can be listed because the model providers
 * cannot be reached, a shutdown). null for anything else: a proxy's
 * 502/503/504 carries no chatd body (its code is http_<status>), and no
 * answer is a network error or a timeout.
 */
export function serverUnavailable(err: unknown): string | null {
  if (!(err instanceof ApiError) || err.code !== 'unavailable') return null;
  return err.status === 0 || err.status === 503 ? err.message : null;
}

/** formatWait says how long to wait in words ("45 seconds", "5 minutes"), rounded up. */
export function formatWait(seconds: number): string {
  return formatDuration(seconds, 'up');
}
