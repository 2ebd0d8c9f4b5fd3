// One answer in the DOM (jsdom): the note saying why it ended, when its text
// does not show it.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatApp } from '../lib/chat';
import { MAX_MESSAGE_CHARS } from '../lib/limits';
import type { Message } from '../lib/protocol';
import { POLITE_STATUS_ID } from '../lib/politeStatus';
import { COPIED_MS } from './Markdown';
import { mountEach, renderMessage, typeInto, watchLive } from './testkit';

const clipboard = vi.hoisted(() => ({ ok: true }));
vi.mock('../lib/clipboard', () => ({ copyText: async () => clipboard.ok }));

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
    expect(note?.textContent).toBe('Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.');
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

describe('MessageItem of a failed answer', () => {
  // Loaded from the store (REST) as after a reload: errorCode picks the
  // advice, the server's words (written for its operator) are the details.
  it.each([
    ['context_length', 'error', "This model's maximum context length is 8192 tokens.", 'Error: The conversation is too long for this model. Start a new chat'],
    ['quota_exhausted', 'error', 'The model provider refused: check your plan and billing details.', 'Error: The model provider refused: its account is out of credit or quota. Pick another model, or tell your administrator.'],
    ['upstream_error', 'error', 'The model provider reported an error: check the API key', 'Error: The model provider had a problem. Regenerate to try again'],
    ['shutdown', 'interrupted', 'The server restarted mid-answer (deploy 42).', 'Interrupted: The server restarted while answering'],
  ] as const)('%s says what to do, the server\'s text under Details', (errorCode, status, error, advice) => {
    renderMessage(mount, answer({ status, error, errorCode }));
    const note = mount.host.querySelector<HTMLElement>('.msg-status')!;
    expect(note.getAttribute('role')).toBe('note');
    expect(note.firstChild?.textContent).toMatch(new RegExp(`^${advice.replace(/[.()]/g, '\\$&')}`));
    const details = note.querySelector('details')!;
    expect(details.querySelector('summary')?.textContent).toBe('Details');
    expect(details.textContent).toBe(`Details${error}`);
  });

  it('shows no Details that would repeat the advice or show a bare code', () => {
    renderMessage(mount, answer({ status: 'interrupted', errorCode: 'shutdown', error: 'The server restarted while answering; the text so far is kept.' }));
    expect(mount.host.querySelector('.msg-status details')).toBeNull();
  });

  it('a stopped answer still says who stopped it', () => {
    renderMessage(mount, answer({ status: 'cancelled' }));
    expect(mount.host.querySelector('.msg-status')?.textContent).toBe('Stopped by the user.');
  });
});

describe('MessageItem of an answer whose end was not confirmed stored', () => {
  it('says it is not confirmed saved, not that it failed, and keeps its text', () => {
    renderMessage(mount, answer({ status: 'error', error: 'The answer could not be saved.', content: 'Hello world' }), { unsaved: true });
    const status = mount.host.querySelector<HTMLElement>('.msg-status');
    expect(status?.textContent).toBe('Not confirmed saved yet: the server’s database is slow. Checking what it kept of this answer…');
    expect(mount.host.textContent).not.toContain('Error');
    expect(mount.host.textContent).toContain('Hello world');
  });
});

describe('MessageItem edit', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  it.each([
    ['Escape', (box: HTMLElement) => act(() => box.querySelector('textarea')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true })))],
    ['its Cancel button', (box: HTMLElement) => act(() => [...box.querySelectorAll('button')].find((b) => b.textContent === 'Cancel')!.click())],
  ])('closed with %s, the focus goes back to the Edit button, not the page', (_name, close) => {
    renderMessage(mount, question);
    const edit = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!;
    edit.focus();
    act(() => edit.click());
    const box = mount.host.querySelector<HTMLElement>('.edit-box')!;
    expect(document.activeElement).toBe(box.querySelector('textarea'));
    close(box);
    expect(mount.host.querySelector('.edit-box')).toBeNull();
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Edit message');
  });

  const escape = (box: HTMLElement) => act(() => box.querySelector('textarea')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true })));
  const enter = (box: HTMLElement) => act(() => box.querySelector('textarea')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })));

  it.each([
    ['closed with Escape once an answer started (Edit disabled)', 'the Copy button beside it', escape, 'Copy message'],
    ['sent (the new version replaces the message)', 'the message box', enter, 'Message'],
  ])('%s, the focus goes to %s, not the page', (_name, _where, close, label) => {
    renderMessage(mount, question);
    const edit = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!;
    edit.focus();
    act(() => edit.click());
    renderMessage(mount, question, { locked: close === escape }); // an answer runs: the Edit button is disabled
    const box = mount.host.querySelector<HTMLElement>('.edit-box')!;
    expect(document.activeElement).toBe(box.querySelector('textarea'));
    close(box);
    expect(mount.host.querySelector('.edit-box')).toBeNull();
    expect(document.activeElement).not.toBe(document.body);
    expect(document.activeElement?.getAttribute('aria-label')).toBe(label);
  });
});

describe('MessageItem edit with changed text', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };
  const escape = (el: Element) => act(() => void el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true })));
  const buttonNamed = (name: string) => [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-box button')].find((b) => b.textContent === name);

  function openAndChange() {
    renderMessage(mount, question);
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    const ta = mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')!;
    typeInto(ta, 'A better question');
    return ta;
  }

  // Escape and Cancel threw the edited text away at once.
  it.each([
    ['Escape', (ta: HTMLTextAreaElement) => escape(ta)],
    ['Cancel', () => act(() => buttonNamed('Cancel')!.click())],
  ])('%s asks before discarding it; Keep editing (or Escape) goes back to the text, kept', (_name, close) => {
    const ta = openAndChange();
    close(ta);
    const question = mount.host.querySelector<HTMLElement>('.edit-box [role="group"]')!;
    expect(document.getElementById(question.getAttribute('aria-labelledby')!)?.textContent).toBe('Discard your changes?');
    expect(document.activeElement).toBe(buttonNamed('Keep editing'));
    escape(document.activeElement!);
    expect(mount.host.querySelector('.edit-box [role="group"]')).toBeNull();
    expect(document.activeElement).toBe(ta);
    expect(ta.value).toBe('A better question');
    close(ta);
    act(() => buttonNamed('Keep editing')!.click());
    expect(document.activeElement).toBe(ta);
    expect(ta.value).toBe('A better question');
  });

  it('Discard closes the box, the focus back on the Edit button, and the next edit starts from the message', () => {
    const ta = openAndChange();
    escape(ta);
    act(() => buttonNamed('Discard')!.click());
    expect(mount.host.querySelector('.edit-box')).toBeNull();
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Edit message');
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    expect(mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')!.value).toBe('A question');
  });

  it.each([
    ['changed back to the message', 'A question'],
    ['emptied', ''],
  ])('%s, closes at once: nothing to lose', (_name, text) => {
    const ta = openAndChange();
    typeInto(ta, text);
    escape(ta);
    expect(mount.host.querySelector('.edit-box')).toBeNull();
  });
});

describe('MessageItem edit that shows nothing', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  // trim() kept U+0085 (sent, refused by the server) and U+200B, U+2800,
  // U+3164 (stored as blank bubbles): lib/visible.ts, the server's rule.
  it.each([['\u0085'], ['\u200b'], ['\u2800'], ['\u3164']])('of %j cannot be sent', (text) => {
    const edit = vi.spyOn(ChatApp.prototype, 'editAndResend').mockImplementation(async () => undefined);
    try {
      renderMessage(mount, question);
      act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      const box = mount.host.querySelector<HTMLElement>('.edit-box')!;
      typeInto(box.querySelector('textarea')!, text);
      const send = [...box.querySelectorAll('button')].find((b) => b.textContent === 'Send')!;
      expect(send.getAttribute('aria-disabled')).toBe('true');
      act(() => send.click());
      act(() => void box.querySelector('textarea')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
      expect(edit).not.toHaveBeenCalled();
    } finally {
      edit.mockRestore();
    }
  });
});

describe('MessageItem edit with an input method', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('the Enter that confirms a conversion %s does not send the edit', (_name, init) => {
    const edit = vi.spyOn(ChatApp.prototype, 'editAndResend').mockImplementation(async () => undefined);
    try {
      renderMessage(mount, question);
      act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      const ta = mount.host.querySelector<HTMLElement>('.edit-box textarea')!;
      act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true, ...init })));
      expect(edit).not.toHaveBeenCalled();
      expect(mount.host.querySelector('.edit-box')).not.toBeNull();
      act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
      expect(edit).toHaveBeenCalledWith('u1', 'A question');
    } finally {
      edit.mockRestore();
    }
  });

  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('the Escape that cancels a conversion %s does not close the edit', (_name, init) => {
    renderMessage(mount, question);
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    const ta = mount.host.querySelector<HTMLElement>('.edit-box textarea')!;
    act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true, ...init })));
    expect(mount.host.querySelector('.edit-box')).not.toBeNull();
    act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true })));
    expect(mount.host.querySelector('.edit-box')).toBeNull();
  });
});

describe('MessageItem edit while an answer runs', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  it('an answer started after the box opened: it cannot be sent, and says why, until the answer ends', () => {
    const edit = vi.spyOn(ChatApp.prototype, 'editAndResend').mockImplementation(async () => undefined);
    try {
      renderMessage(mount, question);
      act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      renderMessage(mount, question, { locked: true });
      const box = mount.host.querySelector<HTMLElement>('.edit-box')!;
      const send = [...box.querySelectorAll('button')].find((b) => b.textContent === 'Send')!;
      const enter = () => act(() => box.querySelector('textarea')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })));
      expect(send.getAttribute('aria-disabled')).toBe('true');
      expect(box.querySelector('[role="status"]')?.textContent).toBe('A message or an answer is on its way: send this once it is done.');
      enter();
      expect(edit).not.toHaveBeenCalled();
      renderMessage(mount, question, { locked: false }); // the answer ended
      expect(box.querySelector('[role="status"]')?.textContent).toBe('');
      enter();
      expect(edit).toHaveBeenCalledWith('u1', 'A question');
    } finally {
      edit.mockRestore();
    }
  });
});

describe('MessageItem Copy', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    vi.useRealTimers();
    clipboard.ok = true;
  });

  it.each([
    ['copied', true, 'Message copied.', 'check'],
    ['not copied', false, 'Could not copy the message.', 'copy'],
  ])('%s: a screen reader is told, the button keeps its name, and the check mark goes after a moment', async (_name, ok, told, icon) => {
    clipboard.ok = ok;
    const status = document.createElement('div');
    status.id = POLITE_STATUS_ID;
    document.body.append(status);
    try {
      renderMessage(mount, answer({}));
      const button = () => mount.host.querySelector<HTMLButtonElement>('button[title="Copy"]')!;
      const shape = () => button().querySelector('path')!.getAttribute('d');
      const idle = shape();
      await act(async () => button().click());
      expect(status.textContent).toBe(told);
      expect(button().getAttribute('aria-label')).toBe('Copy message');
      expect(shape() === idle).toBe(icon === 'copy');
      act(() => vi.advanceTimersByTime(COPIED_MS));
      expect(button().getAttribute('aria-label')).toBe('Copy message');
      expect(shape()).toBe(idle);
    } finally {
      status.remove();
    }
  });
});

describe('MessageItem buttons whose message goes', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  it.each([
    ['Regenerate (a new version replaces the answer)', () => renderMessage(mount, answer({})), 'Regenerate answer'],
    ['Cancel and edit (the queued message goes back to the box)', () => renderMessage(mount, { ...question, id: 'local:x', clientMessageId: 'x' }, { queued: true }), 'Cancel and edit'],
  ])('%s moves the focus to the message box, not the page', (_name, render, label) => {
    render();
    const button = [...mount.host.querySelectorAll<HTMLButtonElement>('button')].find((b) => (b.getAttribute('aria-label') ?? b.textContent) === label)!;
    button.focus();
    act(() => button.click());
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Message');
  });
});

/** readText is el's text as a screen reader reads it: aria-hidden parts left out, visually hidden ones in. */
function readText(el: Element): string {
  if (el.getAttribute('aria-hidden') === 'true') return '';
  return [...el.childNodes].map((n) => (n.nodeType === Node.TEXT_NODE ? n.textContent : n instanceof Element ? readText(n) : '')).join('');
}

describe('MessageItem of an answer with counts', () => {
  // The prompt's tokens and how many messages the prompt left out were in
  // title tooltips only, on elements that take no focus.
  it('reads the prompt\'s tokens, the total and the messages left out, not only the tooltips', () => {
    renderMessage(mount, answer({ usage: { promptTokens: 5478, completionTokens: 212, totalTokens: 5690 }, omittedMessages: 3 }));
    const text = readText(mount.host.querySelector('article')!);
    expect(text).toContain('This answer: 212 tokens. The prompt sent to the model (the conversation so far): 5,478 tokens. Total: 5,690.');
    expect(text).toContain("Earlier messages were not sent to the model: 3 earlier messages were left out of this answer's prompt");
    expect(text).not.toContain('212 tokensThis answer'); // the short visible form is not read as well
    expect(mount.host.querySelector('.usage')?.querySelector('[title]')?.textContent).toBe('212 tokens'); // still shown, with its tooltip
  });
});

describe('MessageItem buttons locked while focused', () => {
  // Disabled when another tab sent (an answer runs), a focused Edit or
  // Regenerate dropped the focus to the page (Chromium).
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };
  it.each([
    ['Edit', question, 'Edit message'],
    ['Regenerate', answer({}), 'Regenerate answer'],
  ])('%s keeps the focus once an answer starts, aria-disabled: a press does nothing', (_name, m, label) => {
    renderMessage(mount, m);
    const button = mount.host.querySelector<HTMLButtonElement>(`button[aria-label="${label}"]`)!;
    button.focus();
    renderMessage(mount, m, { locked: true });
    expect(document.activeElement).toBe(button);
    expect(button.matches(':disabled'), 'a disabled button loses the focus').toBe(false);
    expect(button.getAttribute('aria-disabled')).toBe('true');
    act(() => button.click());
    expect(mount.host.querySelector('.edit-box')).toBeNull();
    expect(document.activeElement).toBe(button); // Regenerate's press would move it to the message box
    renderMessage(mount, m, { locked: false });
    expect(button.hasAttribute('aria-disabled')).toBe(false);
  });

  it.each([
    ['Next, the versions after it gone (a refused edit\'s, dropped)', 'Next version', { version: 2, versions: 2 }],
    ['Previous, the versions before it gone', 'Previous version', { version: 1, versions: 2 }],
  ])('%s keeps the focus at the end of the versions, aria-disabled: a press does nothing', (_name, label, after) => {
    const step = vi.spyOn(ChatApp.prototype, 'switchVersion').mockImplementation(() => undefined);
    try {
      renderMessage(mount, question, { version: 2, versions: 3 });
      const button = mount.host.querySelector<HTMLButtonElement>(`button[aria-label="${label}"]`)!;
      button.focus();
      renderMessage(mount, question, after);
      expect(document.activeElement).toBe(button);
      expect(button.matches(':disabled'), 'a disabled button loses the focus').toBe(false);
      expect(button.getAttribute('aria-disabled')).toBe('true');
      act(() => button.click());
      expect(step).not.toHaveBeenCalled();
      expect(mount.host.querySelector('.versions .sr-only')?.textContent).toBe(`Version ${after.version} of 2`);
      renderMessage(mount, question, { version: 2, versions: 3 });
      expect(button.hasAttribute('aria-disabled')).toBe(false);
      act(() => button.click());
      expect(step).toHaveBeenCalledWith('u1', label === 'Next version' ? 1 : -1);
    } finally {
      step.mockRestore();
    }
  });

  it('with older versions perhaps on the server, counts open-ended and Previous at the oldest loaded one loads them', async () => {
    const earlier = vi.spyOn(ChatApp.prototype, 'earlierVersion').mockImplementation(async (_id, found) => {
      found?.();
      return { version: 50, versions: 150, moreVersions: true };
    });
    const step = vi.spyOn(ChatApp.prototype, 'switchVersion').mockImplementation(() => undefined);
    const status = document.createElement('div');
    status.id = POLITE_STATUS_ID;
    document.body.append(status);
    try {
      renderMessage(mount, question, { version: 1, versions: 100, moreVersions: true });
      expect(mount.host.querySelector('.version-count')?.textContent).toBe('1/100+');
      expect(mount.host.querySelector('.versions .sr-only')?.textContent).toBe('Version 1 of 100 loaded; more versions may exist');
      const previous = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Previous version"]')!;
      expect(previous.hasAttribute('aria-disabled')).toBe(false);
      await act(async () => previous.click());
      expect(earlier).toHaveBeenCalledWith('u1', expect.any(Function));
      expect(step).not.toHaveBeenCalled();
      expect(status.textContent).toBe('Version 50 of 150 loaded; more versions may exist');
      renderMessage(mount, question, { version: 1, versions: 151, moreVersions: false });
      expect(mount.host.querySelector('.version-count')?.textContent).toBe('1/151');
      expect(mount.host.querySelector('.versions .sr-only')?.textContent).toBe('Version 1 of 151');
      expect(previous.getAttribute('aria-disabled')).toBe('true');
    } finally {
      status.remove();
      earlier.mockRestore();
      step.mockRestore();
    }
  });

  it.each([
    ['the focus moved to the message box meanwhile', 'version', 'moved', 'Loading earlier versions…'],
    ['the message gone meanwhile (the conversation left)', 'version', 'unmounted', 'Loading earlier versions…'],
    ['none older turning up', 'none', 'stayed', 'No earlier versions.'],
    ['none older turning up, the focus moved meanwhile', 'none', 'moved', 'Loading earlier versions…'],
  ] as const)('Previous at the oldest loaded version, %s, says and hands on the focus only as the reader is still there', async (_name, outcome, focus, said) => {
    let finish = (_found: boolean) => {};
    const earlier = vi.spyOn(ChatApp.prototype, 'earlierVersion').mockImplementation(
      (_id, found) =>
        new Promise((resolve) => {
          finish = (f) => {
            if (f) found?.();
            resolve(f ? { version: 50, versions: 150, moreVersions: true } : 'none');
          };
        }),
    );
    const status = document.createElement('div');
    status.id = POLITE_STATUS_ID;
    const box = document.createElement('textarea');
    document.body.append(status, box);
    try {
      renderMessage(mount, question, { version: 1, versions: 100, moreVersions: true });
      const previous = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Previous version"]')!;
      previous.focus();
      act(() => previous.click());
      expect(status.textContent).toBe('Loading earlier versions…');
      if (focus === 'moved') box.focus();
      if (focus === 'unmounted') act(() => mount.root.render(null));
      await act(async () => finish(outcome === 'version'));
      expect(status.textContent).toBe(said);
      expect(document.activeElement).toBe(focus === 'moved' ? box : focus === 'stayed' ? previous : document.activeElement);
      act(() => previous.isConnected && previous.click()); // a press again while loading is told so
      if (previous.isConnected) expect(status.textContent).toBe('Loading earlier versions…');
    } finally {
      status.remove();
      box.remove();
      earlier.mockRestore();
    }
  });

  it("the edit box's Send keeps the focus once another tab's send locks it, aria-disabled: a press does nothing", () => {
    const edit = vi.spyOn(ChatApp.prototype, 'editAndResend').mockImplementation(async () => undefined);
    try {
      renderMessage(mount, question);
      act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      const send = [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-box button')].find((b) => b.textContent === 'Send')!;
      send.focus();
      renderMessage(mount, question, { locked: true });
      expect(document.activeElement).toBe(send);
      expect(send.matches(':disabled'), 'a disabled button loses the focus').toBe(false);
      expect(send.getAttribute('aria-disabled')).toBe('true');
      act(() => send.click());
      expect(edit).not.toHaveBeenCalled();
      expect(mount.host.querySelector('.edit-box')).not.toBeNull();
      renderMessage(mount, question, { locked: false });
      expect(send.hasAttribute('aria-disabled')).toBe(false);
      act(() => send.click());
      expect(edit).toHaveBeenCalledWith('u1', 'A question');
    } finally {
      edit.mockRestore();
    }
  });
});

describe('MessageItem of an answer whose server went away', () => {
  it.each([
    ['connected', { linkUp: true }, 'The server running this answer went away. Loading what it kept of this answer…'],
    ['reconnecting', { linkUp: false }, 'Connection lost: the server is going away. Reconnecting to learn what it kept of this answer…'],
    ['offline (nothing reconnects but Retry)', { linkUp: false, offline: true, retryOnly: true }, 'Offline: the server running this answer went away. Press Retry to reconnect and learn what it kept of this answer.'],
    ['offline (retried in the background)', { linkUp: false, offline: true }, 'Offline: the server running this answer went away. What it kept of this answer shows once the connection is back (tried again in the background; Retry tries now).'],
  ])('with the link %s says so', (_name, link, says) => {
    renderMessage(mount, answer({ status: 'interrupted' }), { unconfirmed: true, ...link });
    expect(mount.host.querySelector('.msg-status')?.textContent).toBe(says);
  });
});

describe('MessageItem edit on a touch screen', () => {
  const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };

  it.each([
    ['a touch screen: Enter adds a line (a phone has no Shift+Enter), its Send button sends', true],
    ['a mouse and keyboard: Enter sends', false],
  ])('%s', (_name, coarse) => {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: q === '(pointer: coarse)' ? coarse : false, addEventListener: () => undefined, removeEventListener: () => undefined }));
    const edit = vi.spyOn(ChatApp.prototype, 'editAndResend').mockImplementation(async () => undefined);
    try {
      renderMessage(mount, question);
      act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      const ta = mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')!;
      expect(ta.getAttribute('enterkeyhint')).toBe(coarse ? 'enter' : 'send');
      const enter = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true });
      act(() => void ta.dispatchEvent(enter));
      expect(enter.defaultPrevented).toBe(!coarse); // not prevented: the browser adds the line
      expect(edit).toHaveBeenCalledTimes(coarse ? 0 : 1);
      if (coarse) {
        expect(mount.host.querySelector('.edit-box')).not.toBeNull();
        act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-actions button')].find((b) => b.textContent === 'Send')!.click());
        expect(edit).toHaveBeenCalledWith('u1', 'A question');
      }
    } finally {
      edit.mockRestore();
      vi.unstubAllGlobals();
    }
  });

  it('going over the length limit is said once, not again at each key typed over it; the counter itself is not live', () => {
    renderMessage(mount, question);
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    const box = mount.host.querySelector<HTMLElement>('.edit-box')!;
    const ta = box.querySelector('textarea')!;
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS));
    const said = watchLive(box);
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS + 1));
    expect(said()).toEqual(['Over the limit of 32,000 characters: too long to send.']);
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS + 2));
    expect(said()).toEqual([]);
    const counter = box.querySelector('.counter.over')!;
    expect(counter.textContent).toMatch(/^32,002 \/ 32,000 characters: too long to send\. Remove 2 characters/);
    expect(ta.getAttribute('aria-describedby')).toContain(counter.id);
    expect(counter.closest('[role], [aria-live]')).toBeNull();
  });
});
