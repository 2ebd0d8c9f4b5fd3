// The account dialog in the DOM (jsdom): a request answered after the
// dialog was closed, or once another user is signed in.

import { act } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { User } from '../lib/protocol';
import { Sidebar } from './Sidebar';
import { mountEach } from './testkit';

const mount = mountEach();

function type(label: string, value: string) {
  const input = [...document.querySelectorAll<HTMLInputElement>('[role="dialog"] input')].find((i) => i.labels?.[0]?.textContent === label)!;
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

function press(name: string) {
  act(() => [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === name)!.click());
}


/** openAccountDialog shows the sidebar of app and opens its Account dialog. */
function openAccountDialog(app: ChatApp): void {
  act(() =>
    mount.root.render(
      <AppProvider value={app}>
        <Sidebar open onClose={() => undefined} />
      </AppProvider>,
    ),
  );
  act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Account"]')!.click());
}
describe('AccountDialog closed while its request is on its way', () => {
  it.each([
    ['a password change', 'changePassword', { field: 'currentPassword', text: 'The current password is wrong.' }, 'Password not changed: The current password is wrong.'],
    // An unknown outcome is not prefixed "Password not changed": its text says it may have been.
    ['a password change whose outcome is unknown', 'changePassword', { field: null, text: 'Your password may not have been changed.', unknown: true }, 'Your password may not have been changed.'],
    ['an account deletion', 'deleteAccount', { text: 'Wrong password.' }, 'Account not deleted: Wrong password.'],
  ] as const)('%s refused after the dialog closed is said in a toast, not lost', async (_name, action, refusal, toast) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    let answer: (r: unknown) => void = () => undefined;
    vi.spyOn(app, action).mockImplementation(() => new Promise((resolve) => (answer = resolve as (r: unknown) => void)) as never);
    openAccountDialog(app);
    if (action === 'changePassword') {
      type('Current password', 'old password 123');
      type('New password', 'a new long password 456');
      press('Change password');
    } else {
      type('Your password, to confirm', 'my password 123');
      press('Delete account');
    }
    expect(app[action]).toHaveBeenCalledTimes(1);
    press('Close');
    expect(document.querySelector('[role="dialog"]')).toBeNull();
    await act(async () => answer(refusal));
    expect(app.store.state.toasts.map((t) => [t.kind, t.text])).toEqual([['error', toast]]);
  });
});

describe('AccountDialog when another user signs in (another tab signed A out and B in at once)', () => {
  const person = (id: string, name: string): User => ({ id, email: `${id}@example.com`, name, createdAt: '', updatedAt: '' });
  const signIn = (app: ChatApp, user: User) => act(() => app.store.set((s) => ({ ...s, session: { token: `tok-${user.id}`, user, notice: null } })));
  const said = () => [...document.querySelectorAll('[role="dialog"] .form-done, [role="dialog"] .form-error')].map((p) => p.textContent).filter(Boolean);

  it('closes, dropping A\'s pending change: its answer is not said to B, whose dialog opens fresh', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    signIn(app, person('a', 'Ann'));
    let answer: (r: unknown) => void = () => undefined;
    vi.spyOn(app, 'changePassword').mockImplementation(() => new Promise((resolve) => (answer = resolve as (r: unknown) => void)) as never);
    openAccountDialog(app);
    type('Current password', 'old password 123');
    type('New password', 'a new long password 456');
    press('Change password');
    expect(app.changePassword).toHaveBeenCalledTimes(1);
    signIn(app, person('a', 'Ann A.')); // A's own user renewed (a new token, a new name): the dialog stays
    expect(document.querySelector('[role="dialog"] .account-who')?.textContent).toBe('Signed in as Ann A. (a@example.com).');

    signIn(app, person('b', 'Bob'));
    expect(document.querySelector('[role="dialog"]')).toBeNull();
    // Changed, or refused (changePassword answers null for a refusal once another user is signed in, 4deb874).
    await act(async () => answer(null));
    expect(app.store.state.toasts).toEqual([]);
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Account"]')!.click());
    expect(document.querySelector('[role="dialog"] .account-who')?.textContent).toBe('Signed in as Bob (b@example.com).');
    expect(said()).toEqual([]);
    expect([...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button[type="submit"]')].map((b) => [b.textContent, b.disabled])).toEqual([
      ['Change password', false],
      ['Delete account', false],
    ]);
  });
});

describe('AccountDialog refused for too many attempts', () => {
  it.each([
    ['a password change', 'changePassword', { field: null, text: 'Too many attempts. Try again in 30 seconds.', retryAfter: 30 }],
    ['an account deletion', 'deleteAccount', { text: 'Too many attempts. Try again in 30 seconds.', retryAfter: 30 }],
  ] as const)('%s: the error saying how long to wait goes once the wait is over', async (_name, action, refusal) => {
    vi.useFakeTimers();
    try {
      const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
      vi.spyOn(app, action).mockResolvedValue(refusal as never);
      openAccountDialog(app);
      if (action === 'changePassword') {
        type('Current password', 'old password 123');
        type('New password', 'a new long password 456');
        await act(async () => press('Change password'));
      } else {
        type('Your password, to confirm', 'my password 123');
        await act(async () => press('Delete account'));
      }
      const shown = () => [...document.querySelectorAll('[role="dialog"] .form-error')].map((p) => p.textContent);
      expect(shown()).toEqual(['Too many attempts. Try again in 30 seconds.']);
      act(() => vi.advanceTimersByTime(29_000));
      expect(shown()).toEqual(['Too many attempts. Try again in 30 seconds.']);
      act(() => vi.advanceTimersByTime(1_000));
      expect(shown()).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('AccountDialog password change refused naming no field', () => {
  // The button is disabled while the server works: Chromium moves its focus
  // to the page then, out of the modal dialog, where it stayed once the
  // refusal was shown.
  it('puts the focus on the refusal, not the page', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, 'changePassword').mockResolvedValue({ field: null, text: 'Too many attempts. Try again in 30 seconds.', retryAfter: 30 });
    openAccountDialog(app);
    type('Current password', 'old password 123');
    type('New password', 'a new long password 456');
    const button = [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Change password')!;
    act(() => button.focus());
    await act(async () => button.click());
    expect(document.activeElement?.textContent).toBe('Too many attempts. Try again in 30 seconds.');
    expect(document.activeElement?.classList.contains('form-error')).toBe(true);
  });
});
