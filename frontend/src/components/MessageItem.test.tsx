// One answer in the DOM (jsdom): the note saying why it ended, when its text
// does not show it.

import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { Message } from '../lib/protocol';
import { MessageItem } from './MessageItem';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement;
let root: Root;

beforeEach(() => {
  host = document.createElement('div');
  document.body.append(host);
  root = createRoot(host);
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

function answer(extra: Partial<Message>): Message {
  return { id: 'a1', conversationId: 'c', parentId: 'u1', role: 'assistant', content: 'Some text', status: 'complete', createdAt: '', updatedAt: '', ...extra };
}

function render(m: Message, unconfirmed = false) {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch });
  act(() =>
    root.render(
      <AppProvider value={app}>
        <MessageItem message={m} version={1} versions={1} locked={false} modelName="M" queued={false} linkUp unconfirmed={unconfirmed} thinking={undefined} />
      </AppProvider>,
    ),
  );
  return host.querySelector<HTMLElement>('[data-finish]');
}

describe('MessageItem', () => {
  it('says, in words, that an answer was cut at the output limit', () => {
    const note = render(answer({ finishReason: 'length' }));
    expect(note?.getAttribute('role')).toBe('note');
    expect(note?.textContent).toBe('Cut off: the model reached its output limit.');
  });

  it("says that the provider's content filter stopped an answer that has no text", () => {
    const note = render(answer({ content: '', finishReason: 'content_filter' }));
    expect(note?.textContent).toBe("Stopped by the provider's content filter.");
  });

  it.each([
    ['a normal end', answer({ finishReason: 'stop' }), false],
    ['no reason', answer({}), false],
    ['a streaming answer', answer({ status: 'streaming', finishReason: 'length' }), false],
    ['an answer whose stored state is awaited', answer({ finishReason: 'length' }), true],
  ])('shows no note for %s', (_name, m, unconfirmed) => {
    expect(render(m, unconfirmed)).toBeNull();
  });
});
