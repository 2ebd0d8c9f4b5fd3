// The open conversation in the DOM (jsdom): its settings dialog.

import { act } from 'react';
import { describe, expect, it } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { ChatView } from './ChatView';
import { mountEach } from './testkit';

const mount = mountEach();

describe('ChatView settings dialog', () => {
  it('closes when another conversation is shown (Back while it is open), so nothing of one is saved onto the other', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const render = (id: string | null) =>
      act(() =>
        mount.root.render(
          <AppProvider value={app}>
            <ChatView conversationId={id} onOpenSidebar={() => undefined} />
          </AppProvider>,
        ),
      );
    render('c1');
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!.click());
    expect(mount.host.querySelector('[role="dialog"]')).not.toBeNull();
    render('c1'); // the same conversation rendered again: it stays
    expect(mount.host.querySelector('[role="dialog"]')).not.toBeNull();
    render('c2');
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
    render('c1'); // and does not come back with the first
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
  });
});
