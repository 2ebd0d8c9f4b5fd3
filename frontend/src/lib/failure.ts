// What a failed or interrupted answer tells its reader to do next.
//
// The server's own text (a done frame's error.message, a stored message's
// error) is often written for whoever runs the server ("check its base
// URL", "set the base URL to where it leads"): it is kept as the detail,
// and the kind of failure (errorCode, docs/protocol.md "Error codes")
// picks a next step the reader can take.

import type { Message } from './protocol';

/** AnswerFailure is what the status line of a failed or interrupted answer says. */
export interface AnswerFailure {
  /** What went wrong, in a few words, and what to do about it. */
  advice: string;
  /** The server's own text, when it sent one ("" otherwise). */
  detail: string;
}

const RETRY = 'Regenerate to try again.';
const RETRY_OR_TELL = 'Regenerate to try again; if it keeps happening, tell your administrator.';
const OTHER_MODEL = 'Pick another model, or tell your administrator.';
/** KEPT is said of an answer that ended early with some text; left out when it has none. */
const KEPT = '; the text so far is kept';

/** ADVICE maps a done frame's error code (a stored answer's errorCode) to the step to take. */
const ADVICE: Readonly<Record<string, string>> = {
  timeout: `The model took too long to answer. ${RETRY}`,
  upstream_error: `The model provider had a problem. ${RETRY_OR_TELL}`,
  connection: `The model provider could not be reached. ${RETRY}`,
  rate_limited: 'The model provider is busy. Wait a moment, then regenerate.',
  quota_exhausted: `The model provider refused: its account is out of credit or quota. ${OTHER_MODEL}`,
  context_length: 'The conversation is too long for this model. Start a new chat, shorten the conversation (edit an earlier message), or pick a model with a larger context window.',
  bad_request: 'The model provider refused the request. Change the conversation’s settings or pick another model, or tell your administrator.',
  unknown_model: `This model is not available. ${OTHER_MODEL}`,
  malformed: `The model provider sent a reply that could not be read. ${RETRY_OR_TELL}`,
  internal: `Something went wrong on the server. ${RETRY_OR_TELL}`,
  shutdown: `The server restarted while answering${KEPT}. ${RETRY}`,
  unavailable: 'The server could not confirm this answer was saved. Reload the conversation later to see what was kept.',
};

/**
 * answerFailure says what an answer that ended in error or was interrupted
 * tells its reader: the advice for its code, else a general one (an answer
 * stored before codes were, one a periodic sweep ended, a code this client
 * does not know), and the server's text as the detail. An answer that ended
 * with no text (a reasoning model still silent) is not told its text so far
 * is kept, by the advice nor by the server's text. null for any other
 * status.
 */
export function answerFailure(m: Pick<Message, 'status' | 'error' | 'errorCode' | 'content'>): AnswerFailure | null {
  if (m.status !== 'error' && m.status !== 'interrupted') return null;
  const known = m.errorCode ? ADVICE[m.errorCode] : undefined;
  const advice = known ?? (m.status === 'interrupted' ? `The answer stopped before its end${KEPT}. ${RETRY}` : m.errorCode ? RETRY_OR_TELL : RETRY);
  if (m.content.trim()) return { advice, detail: detailOf(m.error, m.errorCode, advice) };
  const unkept = advice.replace(KEPT, '');
  return { advice: unkept, detail: detailOf(m.error?.replace(KEPT, ''), m.errorCode, unkept) };
}

/**
 * detailOf is the server's text worth showing under Details: none when it
 * says nothing more than the advice (a `shutdown` answer's text is the
 * advice's first sentence) or is the bare code (a done frame without a
 * message stores its code as the error, thread.ts).
 */
function detailOf(error: string | undefined, errorCode: string | undefined, advice: string): string {
  const detail = error?.trim() ?? '';
  if (detail === errorCode || advice.includes(detail)) return '';
  return detail;
}
