// One answer in the DOM (jsdom): the note saying why it ended, when its text
// does not show it.

import { describe, expect, it } from 'vitest';
import type { Message } from '../lib/protocol';
import { mountEach, renderMessage } from './testkit';

const mount = mountEach();

function answer(extra: Partial<Message>): Message {
  return { id: 'a1', conversationId: 'c', parentId: 'u1', role: 'assistant', content: 'Some text', status: 'complete', createdAt: '', updatedAt: '', ...extra };
}

function render(m: Message, unconfirmed = false) {
  renderMessage(mount, m, { unconfirmed });
  return mount.host.querySelector<HTMLElement>('[data-finish]');
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
