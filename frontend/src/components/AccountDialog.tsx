// The account: who is signed in, changing the password (ChangePassword.tsx)
// and, set apart, deleting the account. The password is asked again; a
// refusal (a wrong password) is shown in place and the dialog stays open;
// the button waits while the server works.

import { useId, useRef, useState, type FormEvent } from 'react';
import { useOpen } from '../hooks/useOpen';
import { useWaitOver } from '../hooks/useWaitOver';
import { deletePasswordProblem, type PasswordRefusal, type Refusal } from '../lib/account';
import type { User } from '../lib/protocol';
import { ChangePassword } from './ChangePassword';
import { Dialog } from './Dialog';

/** AccountDialogProps: the user shown, and the account's actions. */
export interface AccountDialogProps {
  user: User | null;
  /** Changes the password; resolves to null when changed, else the refusal. */
  onChangePassword: (currentPassword: string, newPassword: string) => Promise<PasswordRefusal | null>;
  /** Deletes the account; resolves to null when deleted, else the refusal in plain words. */
  onDelete: (password: string) => Promise<Refusal | null>;
  onClose: () => void;
  /**
   * Told of a refusal that came after the dialog was closed while its
   * request was on its way (a password not changed, an account not
   * deleted): the dialog has nowhere to show it.
   */
  onRefusedAfterClose?: (text: string) => void;
}

/** AccountDialog shows the account and offers to change its password or delete it. */
export function AccountDialog({ user, onChangePassword, onDelete, onClose, onRefusedAfterClose }: AccountDialogProps) {
  const open = useOpen();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<Refusal | null>(null);
  useWaitOver(error, setError); // "Try again in 30 seconds." goes once they are over
  const [pending, setPending] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const id = useId();

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (pending) return;
    const problem = deletePasswordProblem(password);
    if (problem) {
      setError({ text: problem });
      input.current?.focus();
      return;
    }
    setPending(true);
    const refused = await onDelete(password);
    if (!open.current) {
      if (refused) onRefusedAfterClose?.(`Account not deleted: ${refused.text}`);
      return;
    }
    setPending(false);
    setError(refused);
    // Deleted: the sign-in page replaces this. Refused: the field again, its text selected.
    if (refused) input.current?.select();
  }

  return (
    <Dialog
      title="Account"
      onClose={onClose}
      actions={
        <button type="button" onClick={onClose} data-autofocus>
          Close
        </button>
      }
    >
      {user && (
        <p className="account-who">
          Signed in as <strong>{user.name || user.email}</strong>
          {user.name && <> ({user.email})</>}.
        </p>
      )}
      <ChangePassword email={user?.email ?? ''} onChange={onChangePassword} onRefusedAfterClose={onRefusedAfterClose} />
      <section className="account-section danger-zone" aria-labelledby={`${id}-title`}>
        <h3 id={`${id}-title`}>Delete account</h3>
        <p id={`${id}-what`}>
          This deletes your account and every conversation in it, with all their messages, and signs you out on every device. It cannot be undone.
        </p>
        <form onSubmit={(e) => void submit(e)} noValidate aria-busy={pending || undefined}>
          <label htmlFor={`${id}-password`}>Your password, to confirm</label>
          <input
            ref={input}
            id={`${id}-password`}
            type="password"
            name="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${id}-what ${id}-error` : `${id}-what`}
          />
          {error && (
            <p id={`${id}-error`} className="form-error" role="alert">
              {error.text}
            </p>
          )}
          <button type="submit" className="danger" disabled={pending}>
            {pending ? 'Deleting…' : 'Delete account'}
          </button>
        </form>
      </section>
    </Dialog>
  );
}
