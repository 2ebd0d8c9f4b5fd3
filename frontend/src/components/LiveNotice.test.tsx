// The notice of a conversation whose live updates stopped, in the DOM (jsdom):
// shown for as long as the state lasts, with a retry, said once by a polite live region outside the chat.

import { act } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { ChatAnnouncements, LiveNotice } from './ChatView';
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
        <ChatAnnouncements conversationId={conversationId} />
        <textarea aria-label="Message" />
      </AppProvider>,
    ),
  );
  return { retry, missing };
}

const region = () => mount.host.querySelector('.live-announcer');
const notice = () => mount.host.querySelector('.live-notice-region')!;
const liveSaying = (words: string) => [...mount.host.querySelectorAll('[aria-live], [role="status"], [role="alert"]')].filter((el) => el.textContent!.includes(words));

describe('LiveNotice', () => {
  it('says updates may be missing, with a retry, until the state ends; its live region is there all along', () => {
    const { retry, missing } = render('c1');
    expect(region()).not.toBeNull();
    expect(region()!.textContent).toBe('');
    missing('lastSeq: must not be negative');
    expect(region()!.textContent).toMatch(/Live updates of this conversation stopped \(lastSeq: must not be negative\): new messages and answers may be missing/);
    expect(notice().textContent).toBe(`${region()!.textContent} Retry`);
    expect(liveSaying('Live updates')).toEqual([region()]); // said once: the notice is no live region
    const button = mount.host.querySelector('button')!;
    expect(button.textContent).toBe('Retry');
    act(() => button.click());
    expect(retry).toHaveBeenCalledWith('c1');
    expect(region()!.textContent).toMatch(/may be missing/); // still said while the retry is on its way
    missing(null);
    expect(region()!.textContent).toBe('');
    expect(notice().textContent).toBe('');
  });

  it('hands the focus of its Retry to the message box once the notice goes, not to the page', () => {
    const { missing } = render('c1');
    missing('x');
    const button = notice().querySelector('button')!;
    act(() => button.focus());
    act(() => button.click());
    missing(null);
    expect(document.activeElement).toBe(mount.host.querySelector('textarea[aria-label="Message"]'));
  });

  it.each([['another conversation', 'c2'], ['a new chat', null]])('says nothing on %s', (_name, id) => {
    const { missing } = render(id);
    missing('x');
    expect(region()!.textContent).toBe('');
  });
});
