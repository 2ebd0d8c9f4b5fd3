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

/** errorText returns a message fit for the user. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429 && err.retryAfter !== undefined) return `${err.message} (try again in ${formatWait(err.retryAfter)})`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
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
