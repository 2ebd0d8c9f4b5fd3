// What a failed or interrupted answer tells its reader to do next.

import { describe, expect, it } from 'vitest';
import { answerFailure } from './failure';
import type { Message } from './protocol';

type Failed = Pick<Message, 'status' | 'error' | 'errorCode'>;

/** withText is m ended with some text. */
const withText = (m: Failed) => ({ content: 'Half an answer', ...m });

describe('answerFailure', () => {
  // Each code of protocol.md's done frame gets a step the reader can take;
  // the server's text, often written for its operator, is the detail.
  it.each<[Failed, RegExp]>([
    [{ status: 'error', errorCode: 'timeout', error: 'The model did not start answering within 60s.' }, /took too long.*Regenerate to try again/],
    [{ status: 'error', errorCode: 'upstream_error', error: 'The model provider had an error.' }, /Regenerate to try again; if it keeps happening, tell your administrator/],
    [{ status: 'error', errorCode: 'connection', error: 'Could not reach the model provider.' }, /could not be reached.*Regenerate to try again/],
    [{ status: 'error', errorCode: 'rate_limited', error: 'The model provider is rate limiting requests: slow down' }, /Wait a moment, then regenerate/],
    [{ status: 'error', errorCode: 'quota_exhausted', error: 'You exceeded your current quota, check your plan and billing details.' }, /Pick another model, or tell your administrator/],
    [{ status: 'error', errorCode: 'context_length', error: 'This model\'s maximum context length is 8192 tokens.' }, /Start a new chat, shorten the conversation/],
    [{ status: 'error', errorCode: 'bad_request', error: 'The model provider rejected the request: check the API key' }, /pick another model, or tell your administrator/],
    [{ status: 'error', errorCode: 'unknown_model', error: 'model "x" is not available' }, /Pick another model/],
    [{ status: 'error', errorCode: 'malformed', error: 'The model provider answered with a web page: check its base URL (it usually ends in /v1).' }, /could not be read.*tell your administrator/],
    [{ status: 'error', errorCode: 'internal', error: 'internal error' }, /went wrong on the server.*Regenerate/],
    [{ status: 'interrupted', error: 'The answer stopped without its end being saved; the text so far is kept.' }, /stopped before its end.*Regenerate to try again/],
    [{ status: 'error', errorCode: 'something_new', error: 'x' }, /^Regenerate to try again; if it keeps happening, tell your administrator\.$/],
    [{ status: 'error', error: 'an answer stored before codes were' }, /^Regenerate to try again\.$/],
  ])('%o', (m, advice) => {
    const f = answerFailure(withText(m));
    expect(f?.advice).toMatch(advice);
    expect(f?.detail).toBe(m.error);
  });

  it('has no detail when the server sent no text', () => {
    expect(answerFailure(withText({ status: 'error', errorCode: 'timeout' }))).toEqual({ advice: expect.stringMatching(/Regenerate/), detail: '' });
  });

  // Details repeated the advice word for word, or showed the bare code a
  // done frame without a message leaves as the error (thread.ts).
  it.each<[string, Failed, RegExp]>([
    ['a shutdown, whose text is the advice', { status: 'interrupted', errorCode: 'shutdown', error: 'The server restarted while answering; the text so far is kept.' }, /restarted.*Regenerate to try again/],
    ['a done frame without a message', { status: 'error', errorCode: 'timeout', error: 'timeout' }, /took too long.*Regenerate/],
    ['an unknown code without a message', { status: 'error', errorCode: 'something_new', error: 'something_new' }, /tell your administrator/],
  ])('has no detail for %s', (_name, m, advice) => {
    expect(answerFailure(withText(m))).toEqual({ advice: expect.stringMatching(advice), detail: '' });
  });

  // An answer that ended before any text (a reasoning model still silent
  // when the server restarted; the start-up sweep) has no text to keep.
  it.each<[string, Failed, string, string]>([
    [
      'a shutdown',
      { status: 'interrupted', errorCode: 'shutdown', error: 'The server restarted while answering; the text so far is kept.' },
      'The server restarted while answering. Regenerate to try again.',
      '',
    ],
    [
      'the start-up sweep',
      { status: 'interrupted', error: 'The answer stopped without its end being saved; the text so far is kept.' },
      'The answer stopped before its end. Regenerate to try again.',
      'The answer stopped without its end being saved.',
    ],
  ])('does not say the text so far is kept of an answer with none: %s', (_name, m, advice, detail) => {
    for (const content of ['', ' \n']) expect(answerFailure({ ...m, content })).toEqual({ advice, detail });
    expect(answerFailure(withText(m))?.advice).toContain('the text so far is kept');
  });

  it.each<Message['status']>(['complete', 'cancelled', 'streaming'])('is null for a %s answer', (status) => {
    expect(answerFailure(withText({ status, error: 'x' }))).toBeNull();
  });
});
