// The account dialog's password change: the current password asked again,
// the new one under registration's rules (its hint shown, its problems said
// before anything is sent). A refusal is shown under the field it concerns
// (or under the form) and that field takes the focus; the button waits while
// the server works; success is said in place and the session goes on.

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useFocusSoon } from '../hooks/useFocusSoon';
import { useOpen } from '../hooks/useOpen';
import { useWaitOver } from '../hooks/useWaitOver';
import { PASSWORD_CHANGED, changePasswordProblem, type PasswordField, type PasswordRefusal } from '../lib/account';
import { PASSWORD_HINT } from '../lib/password';

/** ChangePasswordProps: the account's email (for password managers) and the change action. */
export interface ChangePasswordProps {
  email: string;
  /** Changes the password; resolves to null when changed, else the refusal. */
  onChange: (currentPassword: string, newPassword: string) => Promise<PasswordRefusal | null>;
  /** Told of a refusal that came after the dialog was closed while the change was on its way. */
  onRefusedAfterClose?: (text: string) => void;
}

/** ChangePassword renders the "Change password" section. */
export function ChangePassword({ email, onChange, onRefusedAfterClose }: ChangePasswordProps) {
  const open = useOpen();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState<PasswordRefusal | null>(null);
  useWaitOver(error, setError); // "Try again in 30 seconds." goes once they are over
  const [pending, setPending] = useState(false);
  const [changed, setChanged] = useState(false);
  const fields = { currentPassword: useRef<HTMLInputElement>(null), newPassword: useRef<HTMLInputElement>(null) };
  const done = useRef<HTMLParagraphElement>(null);
  const formError = useRef<HTMLParagraphElement>(null);
  const submitButton = useRef<HTMLButtonElement>(null);
  const focusSoon = useFocusSoon(submitButton);
  const id = useId();

  // Said and focused once changed: the button that had the focus was disabled meanwhile.
  useEffect(() => {
    if (changed) done.current?.focus();
  }, [changed]);

  function focus(field: PasswordField | null) {
    const input = fields[field ?? 'currentPassword'].current;
    input?.focus();
    input?.select();
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (pending) return;
    setChanged(false);
    const problem = changePasswordProblem(current, next);
    setError(problem);
    if (problem) {
      focus(problem.field);
      return;
    }
    setPending(true);
    const refused = await onChange(current, next);
    if (!open.current) {
      // A change whose outcome is unknown is not said to be unchanged: its text says so.
      if (refused) onRefusedAfterClose?.(refused.unknown ? refused.text : `Password not changed: ${refused.text}`);
      return;
    }
    setPending(false);
    setError(refused);
    if (refused) {
      // The button had the focus, disabled meanwhile: the field refused takes it, else the refusal.
      if (refused.field) focus(refused.field);
      else focusSoon(() => formError.current);
      return;
    }
    setCurrent('');
    setNext('');
    setChanged(true);
  }

  /** edit keeps what the user types and forgets the refusal of that field. */
  function edit(field: PasswordField, value: string) {
    (field === 'currentPassword' ? setCurrent : setNext)(value);
    setChanged(false);
    if (error?.field === field) setError(null);
  }

  const errorOf = (field: PasswordField | null) =>
    error && error.field === field ? (
      <p ref={field === null ? formError : undefined} id={`${id}-${field ?? 'form'}-error`} className="form-error" role="alert" tabIndex={field === null ? -1 : undefined}>
        {error.text}
      </p>
    ) : null;
  const describedBy = (field: PasswordField, ...more: string[]) =>
    [error?.field === field ? `${id}-${field}-error` : '', ...more].join(' ').trim() || undefined;

  return (
    <section className="account-section" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Change password</h3>
      <p>Changing it signs out your other devices; this browser stays signed in.</p>
      <form onSubmit={(e) => void submit(e)} noValidate aria-busy={pending || undefined}>
        {/* For password managers: the account whose password this is. */}
        <input type="text" name="username" autoComplete="username" value={email} readOnly hidden />
        <label htmlFor={`${id}-current`}>Current password</label>
        <input
          ref={fields.currentPassword}
          id={`${id}-current`}
          type="password"
          name="currentPassword"
          autoComplete="current-password"
          value={current}
          onChange={(e) => edit('currentPassword', e.target.value)}
          aria-invalid={error?.field === 'currentPassword' || undefined}
          aria-describedby={describedBy('currentPassword')}
        />
        {errorOf('currentPassword')}
        <label htmlFor={`${id}-new`}>New password</label>
        <input
          ref={fields.newPassword}
          id={`${id}-new`}
          type="password"
          name="newPassword"
          autoComplete="new-password"
          value={next}
          onChange={(e) => edit('newPassword', e.target.value)}
          aria-invalid={error?.field === 'newPassword' || undefined}
          aria-describedby={describedBy('newPassword', `${id}-hint`)}
        />
        {errorOf('newPassword')}
        <p id={`${id}-hint`} className="hint">
          {PASSWORD_HINT}
        </p>
        {errorOf(null)}
        <button ref={submitButton} type="submit" className="primary" disabled={pending}>
          {pending ? 'Changing…' : 'Change password'}
        </button>
      </form>
      {/* Present before it says anything, so that screen readers announce it. */}
      <p ref={done} className="form-done" role="status" tabIndex={-1}>
        {changed ? PASSWORD_CHANGED : ''}
      </p>
    </section>
  );
}
