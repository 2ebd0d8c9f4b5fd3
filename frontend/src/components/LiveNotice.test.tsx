// The notice of a conversation whose live updates stopped, in the DOM (jsdom):
// shown for as long as the state lasts, with a retry, in one polite live region.

import { act } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { LiveNotice } from './ChatView';
import { mountEach } from './testkit';

const mount = mountEach();

function render(conversationId: string | null) {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
  const retry = vi.spyOn(app, 'retryLive').mockImplementation(() => undefined);
  const missing = (reason: string | null) =>
    act(() =>
      app.store.set((s) => {
        const liveMissing = { ...s.liveMissing };
        if (reason === null) delete liveMissing.c1;
        else liveMissing.c1 = reason;
        return { ...s, liveMissing };
      }),
    );
  act(() =>
    mount.root.render(
      <AppProvider value={app}>
        <LiveNotice conversationId={conversationId} />
      </AppProvider>,
    ),
  );
  return { retry, missing };
}

const region = () => mount.host.querySelector('[role="status"]');

describe('LiveNotice', () => {
  it('says updates may be missing, with a retry, until the state ends; its live region is there all along', () => {
    const { retry, missing } = render('c1');
    expect(region()).not.toBeNull();
    expect(region()!.textContent).toBe('');
    missing('lastSeq: must not be negative');
    expect(region()!.textContent).toMatch(/Live updates of this conversation stopped \(lastSeq: must not be negative\): new messages and answers may be missing/);
    const button = mount.host.querySelector('button')!;
    expect(button.textContent).toBe('Retry');
    act(() => button.click());
    expect(retry).toHaveBeenCalledWith('c1');
    expect(region()!.textContent).toMatch(/may be missing/); // still said while the retry is on its way
    missing(null);
    expect(region()!.textContent).toBe('');
    expect(mount.host.querySelectorAll('[aria-live], [role="status"], [role="alert"]')).toHaveLength(1);
  });

  it.each([['another conversation', 'c2'], ['a new chat', null]])('says nothing on %s', (_name, id) => {
    const { missing } = render(id);
    missing('x');
    expect(region()!.textContent).toBe('');
  });
});
