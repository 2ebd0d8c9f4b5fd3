// Sign-in and registration.

import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { useFocusSoon } from '../hooks/useFocusSoon';
import { ApiError } from '../lib/api';
import { errorText, formatWait } from '../lib/errors';
import { MAX_NAME_CHARS, lengthStatus } from '../lib/limits';
import { PASSWORD_HINT, emailProblem, fieldProblem, passwordProblem } from '../lib/password';
import { sayPolitely } from '../lib/politeStatus';
import { LengthCounter } from './LengthCounter';

/**
 * addressWide says whether a 429 bounds the client's network address as a
 * whole (its sign-ins and failed logins to any account, its registrations:
 * "... from this address", docs/api.md), not one account from it: another email is
 * refused the same, and the person may have made no attempt of their own
 * (an office behind one address).
 */
export function addressWide(err: unknown): boolean {
  return err instanceof ApiError && err.status === 429 && /\bfrom this address\b/.test(err.message);
}

/** authErrorText explains a failed sign-in or registration. */
export function authErrorText(err: unknown, mode: 'login' | 'register'): string {
  if (err instanceof ApiError) {
    if (err.status === 409) return 'An account with this email already exists. Sign in instead.';
    if (err.status === 401 && mode === 'login') return 'Wrong email or password.';
    if (err.status === 429) {
      const wait = err.retryAfter !== undefined ? ` Try again in ${formatWait(err.retryAfter)}.` : ' Try again later.';
      if (addressWide(err)) {
        const what = mode === 'login' ? 'sign-ins' : 'new accounts';
        return `Too many ${what} from your network address (shared by everyone on the same network), whatever the account.${wait}`;
      }
      return `Too many attempts.${wait}`;
    }
    if (err.status === 403 && mode === 'register') return 'Registration is closed on this server.';
    if (err.status === 400) return fieldProblem(err.message) ?? 'The server did not accept these details. Check them and try again.';
  }
  return errorText(err);
}

/** AuthField is a field of the form a server refusal can name. */
type AuthField = 'email' | 'password' | 'name';

/** FieldError is a refusal of one field, shown under it. */
export interface FieldError {
  field: AuthField;
  text: string;
}

/**
 * serverFieldError reads which field a 400 invalid_field names: the server's
 * message starts with it ("password: must be at most 72 bytes", docs/api.md),
 * in both modes, as the page's own checks are shown under their field. null
 * for any other failure, or a field the form in this mode does not have: it
 * is shown for the whole form.
 */
export function serverFieldError(err: unknown, mode: 'login' | 'register'): FieldError | null {
  if (!(err instanceof ApiError) || err.status !== 400 || err.code !== 'invalid_field') return null;
  const named = /^\s*(email|password|name)\b/i.exec(err.message)?.[1]?.toLowerCase() as AuthField | undefined;
  if (!named || (named === 'name' && mode === 'login')) return null;
  const text = fieldProblem(err.message) ?? 'The server did not accept this. Check it and try again.';
  // Signing in, a password too long for any account is mistyped, not to be shortened.
  if (mode === 'login' && named === 'password' && /^This password is too long/.test(text)) {
    return { field: named, text: 'No account has a password this long: at most 72 bytes fit (plain letters and digits take 1 byte each, accented letters 2, emoji 4). Check it and try again.' };
  }
  return { field: named, text };
}

/** AuthPage renders the sign-in or registration form. */
export function AuthPage({ mode }: { mode: 'login' | 'register' }) {
  const app = useApp();
  const notice = useAppState((s) => s.session.notice);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  /** The server's refusal of one field, shown under it until that field changes. */
  const [refused, setRefused] = useState<FieldError | null>(null);
  /** Problems with the fields, shown under each once the form was submitted. */
  const [checked, setChecked] = useState(false);
  const [pending, setPending] = useState(false);
  const [waitUntil, setWaitUntil] = useState(0);
  /** The wait is the address's (addressWide): another email does not end it. */
  const [waitAddress, setWaitAddress] = useState(false);
  const [now, setNow] = useState(Date.now());
  const submitButton = useRef<HTMLButtonElement>(null);
  const focusSoon = useFocusSoon(submitButton);

  useEffect(() => {
    if (waitUntil <= now) return;
    const t = setTimeout(() => setNow(Date.now()), 1000);
    return () => clearTimeout(t);
  }, [waitUntil, now]);
  useEffect(() => {
    // The countdown ran out: said once, since the button's name does not count.
    // Its error ("Try again in 3 seconds.") is out of date now: it goes.
    if (waitUntil === 0 || now < waitUntil) return;
    setWaitUntil(0);
    setError(null);
    sayPolitely(mode === 'login' ? 'You can sign in again.' : 'You can try again.');
  }, [waitUntil, now, mode]);
  useEffect(() => {
    setError(null);
    setRefused(null);
    setChecked(false);
    setWaitUntil(0); // a wait was for the other form's limit, and its error just went
  }, [mode]);
  useEffect(() => {
    // Why the session ended, said in the page's region: one put in already
    // holding its words is not announced by every screen reader (Toasts).
    // The email field, focused, is also described by it.
    if (notice) sayPolitely(notice);
  }, [notice]);

  const refusedText = (field: AuthField) => (refused?.field === field ? refused.text : null);
  const emailError = (checked ? emailProblem(email) : null) ?? refusedText('email');
  const passwordError = (checked ? (mode === 'register' ? passwordProblem(password) : password ? null : 'Enter your password.') : null) ?? refusedText('password');
  const nameError = refusedText('name');
  // Counted as the server counts it (code points, trimmed, composed): the
  // field's maxLength counted UTF-16 units and cut a pasted name, even
  // inside an emoji. Over the limit the form is not sent, and says why.
  const nameLength = lengthStatus(name.trim().normalize('NFC'), MAX_NAME_CHARS, MAX_NAME_CHARS - 10, 'field');
  /** edited drops the server's refusal of a field once that field changes. */
  const edited = (field: AuthField) => {
    if (refused?.field === field) setRefused(null);
  };

  const waiting = Math.max(0, Math.ceil((waitUntil - now) / 1000));
  const action = mode === 'login' ? 'Sign in' : 'Create account';

  async function submit(e: FormEvent) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setError(null);
    setRefused(null);
    setChecked(true);
    if (mode === 'register' && nameLength.over) {
      form.querySelector<HTMLInputElement>('input[name=name]')?.focus(); // its counter says why
      return;
    }
    const bad = emailProblem(email) ?? (mode === 'register' ? passwordProblem(password) : password ? null : 'Enter your password.');
    if (bad) {
      // Focus the first field in error: its explanation is read with it.
      form.querySelector<HTMLInputElement>(emailProblem(email) ? 'input[name=email]' : 'input[name=password]')?.focus();
      return;
    }
    setPending(true);
    try {
      if (mode === 'login') await app.login(email.trim(), password);
      else await app.register(email.trim(), password, name.trim() || email.normalize('NFKC').trim().split('@')[0]!);
    } catch (err) {
      const field = serverFieldError(err, mode);
      if (field) {
        // Under its field, as the page's own checks: focused, its explanation is read with it.
        setRefused(field);
        form.querySelector<HTMLInputElement>(`input[name=${field.field}]`)?.focus();
        return;
      }
      setError(authErrorText(err, mode));
      // Focused, as a field in error is, when the button pressed had the focus (disabled meanwhile).
      focusSoon(() => form.querySelector<HTMLElement>('#auth-error'));
      if (err instanceof ApiError && err.status === 429 && err.retryAfter) {
        setWaitUntil(Date.now() + err.retryAfter * 1000);
        setWaitAddress(addressWide(err));
        setNow(Date.now());
      }
    } finally {
      setPending(false);
    }
  }

  const other = mode === 'login' ? '/register' : '/login';
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} noValidate aria-labelledby="auth-title">
        <div className="brand">chatd</div>
        <h1 id="auth-title">{mode === 'login' ? 'Sign in' : 'Create your account'}</h1>
        {notice && (
          <p id="auth-notice" className="notice">
            {notice}
          </p>
        )}
        {mode === 'register' && (
          <label>
            Name
            <input
              value={name}
              onChange={(e) => {
                setName(e.target.value);
                edited('name');
              }}
              autoComplete="name"
              dir="auto"
              name="name"
              aria-invalid={!!nameError || nameLength.over || undefined}
              aria-describedby={[nameError ? 'name-error' : '', nameLength.show ? 'name-length' : ''].join(' ').trim() || undefined}
            />
          </label>
        )}
        {mode === 'register' && <LengthCounter id="name-length" length={nameLength} className="counter field-counter" />}
        {nameError && (
          <p id="name-error" className="form-error field-error">
            {nameError}
          </p>
        )}
        <label>
          Email
          <input
            type="email"
            required
            value={email}
            onChange={(e) => {
              setEmail(e.target.value);
              edited('email');
              if (waitUntil > 0 && !waitAddress) {
                // The limit, and the error that counts it, were for the other email.
                setWaitUntil(0);
                setError(null);
              }
            }}
            autoComplete="email"
            name="email"
            autoFocus
            aria-invalid={!!emailError || undefined}
            aria-describedby={[emailError ? 'email-error' : '', notice ? 'auth-notice' : ''].join(' ').trim() || undefined}
          />
        </label>
        {emailError && (
          <p id="email-error" className="form-error field-error">
            {emailError}
          </p>
        )}
        <label>
          Password
          <input
            type="password"
            required
            value={password}
            onChange={(e) => {
              setPassword(e.target.value);
              edited('password');
            }}
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            name="password"
            aria-invalid={!!passwordError || undefined}
            aria-describedby={[passwordError ? 'password-error' : '', mode === 'register' ? 'password-hint' : ''].join(' ').trim() || undefined}
          />
        </label>
        {passwordError && (
          <p id="password-error" className="form-error field-error">
            {passwordError}
          </p>
        )}
        {mode === 'register' && (
          <p id="password-hint" className="hint">
            {PASSWORD_HINT}
          </p>
        )}
        {error && (
          <p id="auth-error" className="form-error" role="alert" tabIndex={-1}>
            {error}
          </p>
        )}
        {/* The countdown is seen, not heard: the button keeps its name while
            it counts (a name changed each second under the focus would be
            read each second) and is described by the error, which says the
            wait once; the end of the wait is said once (sayPolitely). */}
        <button
          ref={submitButton}
          type="submit"
          className="primary"
          disabled={pending || waiting > 0}
          aria-label={waiting > 0 ? action : undefined}
          aria-describedby={waiting > 0 && error ? 'auth-error' : undefined}
        >
          {waiting > 0 ? `Wait ${formatWait(waiting)}` : pending ? 'Please wait…' : action}
        </button>
        <p className="switch">
          {mode === 'login' ? 'No account yet?' : 'Already have an account?'}{' '}
          <a
            href={other}
            onClick={(e) => {
              e.preventDefault();
              app.navigate(other);
            }}
          >
            {mode === 'login' ? 'Create one' : 'Sign in'}
          </a>
        </p>
      </form>
      <p className="about">
        chatd is a self-hosted chat with language models: answers appear as they are written, and your conversations stay on this server.
      </p>
    </main>
  );
}
