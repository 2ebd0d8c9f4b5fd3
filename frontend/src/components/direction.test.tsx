// The direction of what people write (jsdom): Arabic or Hebrew text was laid
// out left to right (a trailing "!" shown at the start of a Hebrew word,
// mixed runs misordered, a title cut at its logical start). Every box and
// line of their text takes the direction of its first strong character
// (dir="auto"); answers are covered in lib/markdown.test.ts.

import { act } from 'react';
import { describe, expect, it } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { Message } from '../lib/protocol';
import { CID, conv } from '../lib/testkit';
import { mergeSnapshot, newThread } from '../lib/thread';
import { AuthPage } from './AuthPage';
import { ChatView } from './ChatView';
import { Sidebar } from './Sidebar';
import { Thinking } from './Thinking';
import { mountEach, renderMessage } from './testkit';

const mount = mountEach();
const hebrew = 'שלום עולם!';

function newApp() {
  return new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
}

describe('text boxes and lines of text take their own direction', () => {
  it('the message box, a message (short or long) and its edit box', () => {
    const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: hebrew, status: 'complete', createdAt: '', updatedAt: '' };
    renderMessage(mount, question);
    expect(mount.host.querySelector('textarea[aria-label="Message"]')?.getAttribute('dir')).toBe('auto');
    expect(mount.host.querySelector('.msg-text')?.getAttribute('dir')).toBe('auto');
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    expect(mount.host.querySelector('textarea[aria-label="Edit your message"]')?.getAttribute('dir')).toBe('auto');
    act(() => mount.root.render(null));
    renderMessage(mount, { ...question, id: 'u2', content: `${hebrew}\n`.repeat(30) });
    expect(mount.host.querySelector('.msg-text-body')?.getAttribute('dir')).toBe('auto');
  });

  it('the conversation list: titles, the search field and the rename field', () => {
    const app = newApp();
    const c = { id: 'c1', title: hebrew, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' };
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, items: [c], loaded: true } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    expect(mount.host.querySelector('li[data-conversation-id="c1"] a')?.getAttribute('dir')).toBe('auto');
    expect(mount.host.querySelector('input[type="search"]')?.getAttribute('dir')).toBe('auto');
    act(() => mount.host.querySelector<HTMLButtonElement>(`button[aria-label="Rename “${hebrew}”"]`)!.click());
    expect(mount.host.querySelector('input[aria-label="Conversation title"]')?.getAttribute('dir')).toBe('auto');
  });

  it('the open conversation\'s title', () => {
    const app = newApp();
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), { ...conv(CID, 'T', '2026-01-01T00:00:00Z'), title: hebrew }, []) } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    expect(mount.host.querySelector('.chat-title')?.getAttribute('dir')).toBe('auto');
  });

  it('a reasoning model\'s thinking', () => {
    act(() => mount.root.render(<Thinking reasoning={hebrew} times={undefined} thinkingNow />));
    expect(mount.host.querySelector('.thinking-text')?.getAttribute('dir')).toBe('auto');
  });

  it('the name field of the registration', () => {
    act(() =>
      mount.root.render(
        <AppProvider value={newApp()}>
          <AuthPage mode="register" />
        </AppProvider>,
      ),
    );
    expect(mount.host.querySelector('input[name="name"]')?.getAttribute('dir')).toBe('auto');
  });
});
