// The live region that says an answer once it has streamed in (jsdom).

import { act } from 'react';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { answerAnnouncement, plainText } from '../lib/announce';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { Message } from '../lib/protocol';
import { applyDelta, applyDone, mergeSnapshot, newThread, upsertMessage, type Thread } from '../lib/thread';
import { AnswerAnnouncer, CHECKING } from './AnswerAnnouncer';
import { Waiting } from './Waiting';
import { App } from './App';
import { mountEach } from './testkit';

const mount = mountEach();

function answer(content: string, status: Message['status'], extra: Partial<Message> = {}): Message {
  return { id: 'a1', conversationId: 'c1', parentId: 'u1', role: 'assistant', content, status, createdAt: '2026-01-01T00:00:02Z', updatedAt: '', ...extra };
}

const question: Message = { id: 'u1', conversationId: 'c1', parentId: '', role: 'user', content: 'hi', status: 'complete', createdAt: '2026-01-01T00:00:01Z', updatedAt: '' };

function thread(...messages: Message[]): Thread {
  return messages.reduce((t, m) => upsertMessage(t, m), newThread('c1'));
}

const render = (t: Thread | undefined) => act(() => mount.root.render(<AnswerAnnouncer thread={t} />));
const region = () => mount.host.querySelector('[role="status"]')!;

describe('AnswerAnnouncer', () => {
  it('says an answer that streamed here once it ends, as it reads, in a live region present all along', () => {
    render(thread(question));
    expect(region().textContent).toBe('');
    render(thread(question, answer('', 'streaming')));
    render(thread(question, answer('Hello **world**', 'streaming')));
    expect(region().textContent).toBe(''); // not piece by piece
    render(thread(question, answer('Hello **world**. Try `ls`:\n\n```sh\nls -l\n```', 'complete')));
    expect(region().textContent).toBe('Answer finished, 6 words.'); // Hello world. Try ls: ls -l
    expect(region().textContent).not.toContain('Hello'); // the text itself is read where it is, not copied
  });

  it('says the same words again as a new node: a regenerated answer alike the last is announced too', () => {
    render(thread(question, answer('Same', 'streaming')));
    render(thread(question, answer('Same', 'complete')));
    const first = region().firstElementChild;
    expect(first?.textContent).toBe('Answer finished, 1 word.');
    const again: Message = { ...answer('Same', 'streaming'), id: 'a2', createdAt: '2026-01-01T00:00:03Z' };
    render(thread(question, answer('Same', 'complete'), again));
    render(thread(question, answer('Same', 'complete'), { ...again, status: 'complete' }));
    expect(region().firstElementChild?.textContent).toBe('Answer finished, 1 word.');
    expect(region().firstElementChild).not.toBe(first);
  });

  it('says "Thinking…" once when an answer\'s reasoning starts, not at each piece of it, then the answer once it ends', () => {
    render(thread(question, answer('', 'streaming')));
    expect(region().textContent).toBe('');
    render(thread(question, answer('', 'streaming', { reasoning: 'Let me' })));
    const said = region().firstElementChild;
    expect(said?.textContent).toBe('Thinking…');
    render(thread(question, answer('', 'streaming', { reasoning: 'Let me see' })));
    render(thread(question, answer('Hi', 'streaming', { reasoning: 'Let me see.' })));
    render(thread(question, answer('Hi there', 'streaming', { reasoning: 'Let me see.' })));
    expect(region().firstElementChild).toBe(said); // the same node: not said again
    render(thread(question, answer('Hi there', 'complete', { reasoning: 'Let me see.' })));
    expect(region().textContent).toBe('Answer finished, 2 words.');
  });

  // The ids below are their own: which answers' thinking was said is kept
  // for the page (lib/announce.ts), across conversations shown again.
  it('says "Thinking…" once per answer: not again when its conversation is shown again (mounted anew)', () => {
    const t = thread(question, answer('', 'streaming', { id: 'a4', reasoning: 'Hmm' }));
    act(() => mount.root.render(<AnswerAnnouncer key="c1" thread={t} />));
    expect(region().textContent).toBe('Thinking…');
    act(() => mount.root.render(<AnswerAnnouncer key="c2" thread={undefined} />));
    act(() => mount.root.render(<AnswerAnnouncer key="c1" thread={t} />));
    expect(region().textContent).toBe('');
  });

  it('does not say "Thinking…" again when the wait said it (a model known to reason), nor does the wait when shown again', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    onTestFinished(() => void vi.useRealTimers());
    vi.setSystemTime(Date.parse('2026-01-01T00:00:10Z'));
    const waiting = answer('', 'streaming', { id: 'a5', createdAt: '2026-01-01T00:00:10Z' });
    const show = (m: Message, wait: boolean) =>
      act(() =>
        mount.root.render(
          <>
            {wait && <Waiting id={m.id} createdAt={m.createdAt} reasoner />}
            <AnswerAnnouncer thread={thread(question, m)} />
          </>,
        ),
      );
    const said = () => [...mount.host.querySelectorAll('[role="status"]')].map((el) => el.textContent);
    show(waiting, true);
    act(() => vi.advanceTimersByTime(3000));
    expect(said()).toEqual(['Thinking…', '']); // the wait's live region, then the announcer's
    show({ ...waiting, reasoning: 'Let me' }, false); // the wait goes as the reasoning comes
    expect(said()).toEqual(['']);
    act(() => mount.root.render(<></>));
    show(waiting, true); // shown again, still silent
    act(() => vi.advanceTimersByTime(3000));
    expect(said()).toEqual(['', '']);
    expect(mount.host.querySelector('.waiting-label')?.textContent).toBe('Thinking… 6 s'); // shown, not said
  });

  it('says why an answer stopped', () => {
    render(thread(question, answer('Half', 'streaming')));
    render(thread(question, answer('Half', 'cancelled')));
    expect(region().textContent).toBe('Answer stopped, 1 word.');
  });

  // An end the server could not confirm stored (unavailable) or heard as
  // it went away (shutdown) is not final: the stored answer is read back.
  it.each([
    ['unavailable', 'error', 'The answer could not be saved: the database is not accepting writes.'],
    ['shutdown', 'interrupted', 'the server is shutting down; try again in a moment'],
  ] as const)('says an answer ended %s only once it is read back final, as it ended', (code, status, message) => {
    const conversation = { id: 'c1', title: '', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' };
    let t = thread(question, answer('', 'streaming'));
    render(t);
    t = applyDelta(t, { type: 'delta', conversationId: 'c1', messageId: 'a1', seq: 11, text: 'Hello world' }).thread;
    render(t);
    t = applyDone(t, { type: 'done', conversationId: 'c1', messageId: 'a1', seq: 5, status, error: { code, message } }).thread;
    render(t);
    expect(region().textContent).toBe(CHECKING); // not "did not finish": it may yet be stored whole
    render(t); // said once, not again at each render
    expect(region().querySelectorAll('p')).toHaveLength(1);
    t = mergeSnapshot(t, conversation, [question, answer('Hello world', 'complete')]);
    render(t);
    expect(region().textContent).toBe('Answer finished, 2 words.');
  });

  it('does not read out the answers of a conversation loaded (or reloaded) with them ended', () => {
    render(undefined);
    render(thread(question, answer('Old news', 'complete')));
    expect(region().textContent).toBe('');
  });
});

describe('answerAnnouncement', () => {
  it.each<[string, Message, string]>([
    ['math read once, from its MathML', answer('Area $\\pi r^2$', 'complete'), 'Answer finished, 2 words.'],
    ['an error without a code', answer('', 'error', { error: 'upstream failed' }), 'Answer did not finish. Regenerate to try again.'],
    [
      'an error says what to do, not the operator\'s words',
      answer('Half', 'error', { error: 'The model provider rejected the request: check the API key', errorCode: 'context_length' }),
      'Answer did not finish, 1 word. The conversation is too long for this model. Start a new chat, shorten the conversation (edit an earlier message), or pick a model with a larger context window.',
    ],
    ['cut at the output limit', answer('Long', 'complete', { finishReason: 'length' }), 'Answer finished, 1 word. Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.'],
    [
      'interrupted before any text: none is said kept',
      answer('', 'interrupted', { reasoning: 'Let me think', errorCode: 'shutdown', error: 'The server restarted while answering; the text so far is kept.' }),
      'Answer did not finish. The server restarted while answering. Regenerate to try again.',
    ],
    [
      'interrupted with some text: it is kept',
      answer('Half', 'interrupted', { errorCode: 'shutdown', error: 'The server restarted while answering; the text so far is kept.' }),
      'Answer did not finish, 1 word. The server restarted while answering; the text so far is kept. Regenerate to try again.',
    ],
  ])('%s', (_name, m, want) => {
    expect(answerAnnouncement(m)).toBe(want);
  });

  it('takes raw HTML as text and runs nothing', () => {
    expect(plainText('<img src=x onerror="window.__xss=1"> <script>window.__xss=1</script>')).toBe('<img src=x onerror="window.__xss=1"> <script>window.__xss=1</script>');
    expect((window as { __xss?: number }).__xss).toBeUndefined();
  });
});

describe('ChatLayout', () => {
  // A phone's open drawer makes the chat inert, and browsers hide what is
  // inert from assistive technologies, live regions included (jsdom does not:
  // the test checks that no live region saying it is inside [inert]).
  it.each([['closed'], ['open']])('announces an answer that streamed into the open conversation once it ends, the narrow-screen drawer %s', (drawer) => {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: q === '(max-width: 760px)', addEventListener: () => undefined, removeEventListener: () => undefined }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const show = (t: Thread) => act(() => app.store.set((s) => ({ ...s, threads: { c1: { ...t, loaded: true } } })));
    act(() => app.store.set((s) => ({ ...s, route: { name: 'chat', conversationId: 'c1' } })));
    show(thread(question));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <App />
        </AppProvider>,
      ),
    );
    if (drawer === 'open') act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Open conversations"]')!.click());
    expect(mount.host.querySelector('main.chat')!.hasAttribute('inert')).toBe(drawer === 'open');
    show(thread(question, answer('It is **done**', 'streaming')));
    show(thread(question, answer('It is **done**', 'complete')));
    const live = (words: string) => [...mount.host.querySelectorAll('[role="status"], [aria-live]')].filter((el) => el.textContent!.includes(words));
    expect(live('Answer finished').map((el) => [el.textContent, el.closest('[inert]')])).toEqual([['Answer finished, 3 words.', null]]);
    act(() => app.store.set((s) => ({ ...s, liveMissing: { c1: 'refused' } })));
    expect(live('Live updates').map((el) => el.closest('[inert]'))).toEqual([null]);
  });
});
