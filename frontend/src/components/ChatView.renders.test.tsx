// What an update of a streaming answer renders again (jsdom): only that
// answer, not the finished messages above it.

import { act, memo, type ComponentProps, type FunctionComponent } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { CID, conv, message } from '../lib/testkit';
import { applyDelta, mergeSnapshot, newThread } from '../lib/thread';
import { ChatView } from './ChatView';
import { mountEach } from './testkit';

/** rendered counts the renders of each message's MessageItem, by message id. */
const rendered = vi.hoisted(() => new Map<string, number>());

vi.mock('./MessageItem', async (original) => {
  const real = await original<typeof import('./MessageItem')>();
  // The real component's function, rendered by a memo like the real one's, counted.
  const inner = (real.MessageItem as unknown as { type: FunctionComponent<ComponentProps<typeof real.MessageItem>> }).type;
  const MessageItem = memo(function Counted(props: ComponentProps<typeof real.MessageItem>) {
    rendered.set(props.message.id, (rendered.get(props.message.id) ?? 0) + 1);
    return inner(props);
  });
  return { ...real, MessageItem };
});

const mount = mountEach();

describe('ChatView with many messages while an answer streams', () => {
  it('renders only the streaming answer again at each update, not the finished messages', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const msgs = Array.from({ length: 200 }, (_, i) => message(`m${String(i).padStart(3, '0')}`, i ? `m${String(i - 1).padStart(3, '0')}` : '', i % 2 ? 'assistant' : 'user', `Message ${i}`, 'complete'));
    msgs.push(message('a1', 'm199', 'assistant', 'Hel', 'streaming'));
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), msgs) } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    expect(rendered.get('m000')).toBeGreaterThan(0);
    rendered.clear();
    let seq = 3;
    for (const text of ['lo', ' there', '!']) {
      seq += text.length;
      act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: applyDelta(s.threads[CID]!, { type: 'delta', conversationId: CID, messageId: 'a1', seq, text }).thread } })));
    }
    expect(mount.host.querySelector('[data-message-id="a1"]')?.textContent).toContain('Hello there!');
    expect([...rendered.keys()]).toEqual(['a1']);
  });
});
