// The app's page (jsdom): nothing rendered of a user's messages outlives
// that user's session in this tab.

import { act } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { markdownCacheSize, renderBlocks } from '../lib/markdown';
import { memoryKV } from '../lib/persist';
import type { User } from '../lib/protocol';
import { App } from './App';
import { mountEach } from './testkit';

const mount = mountEach();

function user(id: string): User {
  return { id, email: `${id}@example.com`, name: id, createdAt: '', updatedAt: '' } as User;
}

describe('App and the markdown block cache', () => {
  afterEach(() => history.replaceState(null, '', '/'));

  it.each([
    ['signing out', (app: ChatApp) => app.logout()],
    ['another user taking the tab', async (app: ChatApp) => app.store.set((s) => ({ ...s, session: { token: 't2', user: user('v'), notice: null } }))],
  ])('is emptied on %s', async (_name, change) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, route: { name: 'chat', conversationId: null }, session: { token: 't', user: user('u'), notice: null } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <App />
        </AppProvider>,
      ),
    );
    renderBlocks('# A private answer\n\nWith a second paragraph.'); // as the user's thread rendered it
    expect(markdownCacheSize().entries).toBeGreaterThan(0);
    await act(() => change(app));
    expect(markdownCacheSize()).toEqual({ entries: 0, chars: 0 });
  });
});
