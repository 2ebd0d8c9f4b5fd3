// The chat's error boundary (jsdom): a working chat is kept across
// conversation changes (its message box, with the focus, is not
// rebuilt), and a failure is forgotten when another conversation is shown.

import { act, useEffect } from 'react';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { CHAT_FAILED, ChatErrorBoundary } from './ChatErrorBoundary';
import { mountEach } from './testkit';

const mount = mountEach();

/** Chat stands in for ChatView: a box, counting its mounts; it throws when told. */
function Chat({ id, mounts, fail }: { id: string | null; mounts: { n: number }; fail?: string }) {
  useEffect(() => {
    mounts.n++;
  }, [mounts]);
  if (fail !== undefined && id === fail) throw new Error('cannot render');
  return <textarea aria-label="Message" data-id={id ?? ''} />;
}

function show(id: string | null, mounts: { n: number }, fail?: string) {
  act(() =>
    mount.root.render(
      <ChatErrorBoundary conversationId={id} onOpenSidebar={() => {}}>
        <Chat id={id} mounts={mounts} fail={fail} />
      </ChatErrorBoundary>,
    ),
  );
}

describe('ChatErrorBoundary', () => {
  it.each([
    ['a new chat\'s first send creating its conversation', null, 'c1'],
    ['another conversation picked', 'c1', 'c2'],
  ])('keeps the working chat, and the focus in its box, on %s', (_name, from, to) => {
    const mounts = { n: 0 };
    show(from, mounts);
    const box = mount.host.querySelector('textarea')!;
    box.focus();
    show(to, mounts);
    expect(mounts.n).toBe(1);
    expect(mount.host.querySelector('textarea')).toBe(box);
    expect(box.dataset.id).toBe(to);
    expect(document.activeElement).toBe(box);
  });

  it('says the chat failed, and tries again when another conversation is shown', () => {
    const failures = vi.spyOn(console, 'error').mockImplementation(() => {});
    onTestFinished(() => failures.mockRestore());
    const mounts = { n: 0 };
    show('c1', mounts, 'c1');
    expect(mount.host.querySelector('[role="alert"]')?.textContent).toContain(CHAT_FAILED);
    expect(mount.host.querySelector('textarea')).toBeNull();
    show('c1', mounts, 'c1'); // still the failed one: still the alert, no retry loop
    expect(mount.host.querySelector('[role="alert"]')?.textContent).toContain(CHAT_FAILED);
    show('c2', mounts, 'c1');
    expect(mount.host.querySelector('[role="alert"]')).toBeNull();
    expect(mount.host.querySelector('textarea')?.dataset.id).toBe('c2');
  });
});
