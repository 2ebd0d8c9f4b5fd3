// The sign-in page in the DOM (jsdom): the countdown after too many
// attempts is seen on the button but not re-announced each second.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ApiError } from '../lib/api';
import { ChatApp, SESSION_ENDED } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { POLITE_STATUS_ID } from '../lib/politeStatus';
import { PoliteStatus } from './App';
import { AuthPage } from './AuthPage';
import { mountEach } from './testkit';

const mount = mountEach();

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function type(name: string, value: string) {
  const input = mount.host.querySelector<HTMLInputElement>(`input[name="${name}"]`)!;
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

/** accessibleName is the submit button's name as assistive technology computes it here. */
function accessibleName(b: HTMLButtonElement): string {
  return b.getAttribute('aria-label') ?? b.textContent ?? '';
}

describe('AuthPage rate-limit countdown', () => {
  it('counts down visibly under a stable name, described by the error, and says once when sign-in is possible again', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, 'login').mockRejectedValue(new ApiError(429, 'rate_limited', 'Too many attempts', 3));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="login" />
          <PoliteStatus />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    const button = mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    await act(async () => button.click());

    const region = document.getElementById(POLITE_STATUS_ID)!;
    const seen: Array<[string, string]> = [];
    for (let i = 0; i < 3; i++) {
      seen.push([button.textContent ?? '', accessibleName(button)]);
      expect(button.disabled).toBe(true);
      expect(document.getElementById(button.getAttribute('aria-describedby') ?? '')?.textContent).toBe('Too many attempts. Try again in 3 seconds.');
      expect(region.textContent).toBe('');
      act(() => vi.advanceTimersByTime(1000));
    }
    expect(seen).toEqual([
      ['Wait 3 seconds', 'Sign in'],
      ['Wait 2 seconds', 'Sign in'],
      ['Wait 1 second', 'Sign in'],
    ]);
    expect(button.disabled).toBe(false);
    expect(accessibleName(button)).toBe('Sign in');
    expect(button.hasAttribute('aria-describedby')).toBe(false);
    expect(region.textContent).toBe('You can sign in again.');
    // The count is over: its error, which said to wait 3 seconds, is gone.
    expect(mount.host.querySelector('#auth-error')).toBeNull();
    region.replaceChildren();
    act(() => vi.advanceTimersByTime(5000));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="register" />
          <PoliteStatus />
        </AppProvider>,
      ),
    );
    expect(region.textContent).toBe(''); // said once, not again on the next page
  });

  /** signInRefused signs in on the sign-in page, refused 429 with message and a 30 s wait; it returns the submit button. */
  async function signInRefused(message: string): Promise<HTMLButtonElement> {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, 'login').mockRejectedValue(new ApiError(429, 'rate_limited', message, 30));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="login" />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    const button = mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    await act(async () => button.click());
    return button;
  }

  it('drops the countdown and its error when the address changes: the limit was for the other one', async () => {
    const button = await signInRefused('Too many attempts');
    expect(mount.host.querySelector('#auth-error')?.textContent).toBe('Too many attempts. Try again in 30 seconds.');
    type('email', 'grace@example.com');
    expect(button.disabled).toBe(false);
    expect(mount.host.querySelector('#auth-error')).toBeNull();
  });

  it.each([
    ['its checks', 'too many sign-ins from this address; try again later'],
    ['its failed logins to any accounts (CHATD_LOGIN_MAX_FAILURES_IP)', 'too many failed logins from this address; try again later'], // transport/auth
  ])('keeps the countdown when the email changes after a refusal of the whole address (%s), and says it is the address\'s', async (_, message) => {
    const button = await signInRefused(message);
    const said = mount.host.querySelector('#auth-error')?.textContent;
    expect(said).toMatch(/^Too many sign-ins from your network address .*whatever the account\. Try again in 30 seconds\.$/);
    type('email', 'grace@example.com'); // refused the same: the wait stays
    expect(button.disabled).toBe(true);
    expect(mount.host.querySelector('#auth-error')?.textContent).toBe(said);
  });

  it('drops the countdown when the other form is shown: its limit, and the error saying it, were the other form\'s', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, 'login').mockRejectedValue(new ApiError(429, 'rate_limited', 'Too many attempts', 30));
    const render = (mode: 'login' | 'register') =>
      act(() =>
        mount.root.render(
          <AppProvider value={app}>
            <AuthPage mode={mode} />
          </AppProvider>,
        ),
      );
    render('login');
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    const button = mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    await act(async () => button.click());
    expect(button.textContent).toBe('Wait 30 seconds');
    render('register');
    expect(mount.host.querySelector('#auth-error')).toBeNull();
    expect(button.disabled).toBe(false);
    expect(button.textContent).toBe('Create account');
  });
});

describe('AuthPage after the session ended', () => {
  // The notice came in a role="status" put in already holding its words,
  // which not every screen reader announces, while the focus went to the
  // email field, not described by it.
  it('says why in the page\'s polite region, and describes the focused email field with it', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, session: { token: null, user: null, notice: SESSION_ENDED } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <PoliteStatus />
          <AuthPage mode="login" />
        </AppProvider>,
      ),
    );
    expect(document.getElementById(POLITE_STATUS_ID)?.textContent).toBe(SESSION_ENDED);
    const email = mount.host.querySelector<HTMLInputElement>('input[name="email"]')!;
    expect(document.activeElement).toBe(email);
    const described = (email.getAttribute('aria-describedby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent);
    expect(described).toContain(SESSION_ENDED);
    expect(mount.host.querySelector('.notice')?.textContent).toBe(SESSION_ENDED); // still shown
  });
});

describe('AuthPage field refused by the server', () => {
  // An invalid_field answer names its field: shown under it, as the page's
  // own checks are, in both modes. Signing in with a password over 72 bytes
  // showed "password: must be at most 72 bytes" for the whole form.
  it.each([
    ['login', 'password', 'password: must be at most 72 bytes', /^No account has a password this long/],
    ['login', 'password', 'password: must not contain NUL characters', /NUL character/],
    ['register', 'email', 'email: must not contain invisible characters', /^This email address was not accepted: it contains invisible/],
    ['register', 'name', 'name: must not contain control or bidirectional formatting characters', /^This name was not accepted/],
  ] as const)('%s: %s (%s) is marked, described and focused', async (mode, field, message, text) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, mode).mockRejectedValue(new ApiError(400, 'invalid_field', message));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode={mode} />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    await act(async () => mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!.click());
    const input = mount.host.querySelector<HTMLInputElement>(`input[name="${field}"]`)!;
    expect(input.getAttribute('aria-invalid')).toBe('true');
    const described = document.getElementById((input.getAttribute('aria-describedby') ?? '').split(' ')[0]!);
    expect(described?.id).toBe(`${field}-error`);
    expect(described?.textContent).toMatch(text);
    expect(document.activeElement).toBe(input);
    expect(mount.host.querySelector('#auth-error')).toBeNull();
    expect(mount.host.textContent).not.toContain(message);
    // Changing the field drops the refusal.
    type(field, field === 'email' ? 'grace@example.com' : 'another password 456');
    expect(input.hasAttribute('aria-invalid')).toBe(false);
  });
});

describe('AuthPage refused for the whole form', () => {
  // The button pressed is disabled while the server works: Chromium moves
  // its focus to the page then, where it stayed once the refusal was shown.
  it.each([
    ['login', new ApiError(401, 'unauthorized', 'invalid credentials'), 'Wrong email or password.'],
    ['login', new ApiError(429, 'rate_limited', 'Too many attempts', 30), 'Too many attempts. Try again in 30 seconds.'],
    ['register', new ApiError(409, 'conflict', 'email taken'), 'An account with this email already exists. Sign in instead.'],
  ] as const)('%s: the refusal (%s) takes the focus from the button pressed', async (mode, err, text) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    vi.spyOn(app, mode).mockRejectedValue(err);
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode={mode} />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    const button = mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    act(() => button.focus());
    await act(async () => button.click());
    expect(document.activeElement).toBe(mount.host.querySelector('#auth-error'));
    expect(document.activeElement?.textContent).toBe(text);
  });
});

describe('AuthPage refused while the focus is in a field', () => {
  // Only the focus the button pressed had (to the page, the button disabled)
  // goes to the refusal: Enter in a field sends the form and the focus never
  // left it, and a field typed in while the server works keeps it. The
  // refusal is an alert: said all the same.
  it.each([
    ['Enter in the password field sent it', 'password', () => undefined],
    ['the email field, moved to while the server worked', 'email', () => mount.host.querySelector<HTMLInputElement>('input[name="email"]')!.focus()],
  ])('%s: the focus stays there', async (_name, field, meanwhile) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    let refuse!: (err: unknown) => void;
    vi.spyOn(app, 'login').mockImplementation(() => new Promise((_, reject) => (refuse = reject)));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="login" />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'wrong password 123');
    const password = mount.host.querySelector<HTMLInputElement>('input[name="password"]')!;
    act(() => password.focus());
    await act(async () => password.form!.requestSubmit()); // what Enter in the field does
    act(meanwhile);
    await act(async () => refuse(new ApiError(401, 'unauthorized', 'invalid credentials')));
    expect(document.activeElement).toBe(mount.host.querySelector(`input[name="${field}"]`));
    const alert = mount.host.querySelector('#auth-error');
    expect(alert?.getAttribute('role')).toBe('alert');
    expect(alert?.textContent).toBe('Wrong email or password.');
  });
});

describe('AuthPage with a full-width address (a Japanese IME)', () => {
  it('sends it as typed (the server normalises it, NFKC), named after its local part when no name is given', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const register = vi.spyOn(app, 'register').mockResolvedValue();
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="register" />
        </AppProvider>,
      ),
    );
    type('email', 'ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ');
    type('password', 'a long password 123');
    await act(async () => mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!.click());
    expect(mount.host.querySelector('input[name="email"]')?.getAttribute('aria-invalid')).not.toBe('true');
    expect(register).toHaveBeenCalledWith('ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ', 'a long password 123', 'ada');
  });
});

describe('AuthPage name counted as the server counts it (code points)', () => {
  // Its maxLength={100} counted UTF-16 units: a name of 60 emoji (valid)
  // was cut to 50, silently, or an emoji family cut in two.
  function renderRegister() {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const register = vi.spyOn(app, 'register').mockResolvedValue(undefined);
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <AuthPage mode="register" />
        </AppProvider>,
      ),
    );
    type('email', 'ada@example.com');
    type('password', 'a long password 123');
    return { register, submit: () => act(async () => mount.host.querySelector<HTMLButtonElement>('button[type="submit"]')!.click()) };
  }

  it('keeps a name of 60 emoji whole and sends it', async () => {
    const { register, submit } = renderRegister();
    const name = '\u{1F600}'.repeat(60);
    type('name', name);
    expect(mount.host.querySelector<HTMLInputElement>('input[name="name"]')!.maxLength).toBe(-1);
    await submit();
    expect(register).toHaveBeenCalledWith('ada@example.com', 'a long password 123', name);
  });

  it('refuses a name over 100 characters, saying why by the field, which takes the focus', async () => {
    const { register, submit } = renderRegister();
    type('name', 'a'.repeat(101));
    await submit();
    expect(register).not.toHaveBeenCalled();
    const input = mount.host.querySelector<HTMLInputElement>('input[name="name"]')!;
    expect(document.activeElement).toBe(input);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(input.getAttribute('aria-describedby')!)?.textContent).toBe('101 / 100 characters: too long. Shorten it by 1 character.');
  });
});
