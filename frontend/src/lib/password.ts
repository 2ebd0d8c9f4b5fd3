// The password rules of registration and of a password change (docs/api.md:
// 8 characters to 72 bytes, bcrypt's limit, no NUL), said in plain words
// before the server is asked.

import { utf8Length } from './utf8';

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_BYTES = 72;

/** PASSWORD_HINT is shown under the field. */
export const PASSWORD_HINT = 'At least 8 characters and at most 72 bytes: 72 plain letters or digits, fewer with accents or emoji (2 to 4 bytes each).';

const NUL_PROBLEM = 'This password holds a NUL character (U+0000), which cannot be part of a password. Remove it.';

/** passwordProblem explains why a new password is refused, or returns null when it is fine. */
export function passwordProblem(password: string): string | null {
  const chars = [...password].length;
  if (chars < PASSWORD_MIN_CHARS) {
    return chars === 0
      ? 'Choose a password of at least 8 characters.'
      : `This password is too short: ${chars} character${chars === 1 ? '' : 's'}. Use at least 8.`;
  }
  const bytes = utf8Length(password);
  if (bytes > PASSWORD_MAX_BYTES) {
    return `This password is too long: it takes ${bytes} bytes, and at most 72 fit (plain letters and digits take 1 byte each, accented letters 2, emoji 4). Shorten it.`;
  }
  return password.includes('\0') ? NUL_PROBLEM : null;
}

/**
 * emailProblem explains an address that cannot be one, or returns null. It
 * reads the address as the server does, NFKC-normalised (docs/api.md): a
 * full-width one typed with an IME (ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ) is
 * ada@example.com. The address is sent as typed: the server normalises
 * it, and a sign-in also looks it up in the forms accounts were stored in
 * before NFKC, found only from the address as typed.
 */
export function emailProblem(email: string): string | null {
  const e = email.normalize('NFKC').trim();
  if (!e) return 'Enter your email address.';
  if (!/^[^\s@]+@[^\s@]+$/.test(e)) return 'This does not look like an email address (name@example.com).';
  return null;
}

/**
 * fieldProblem turns the server's refusal of a field (`invalid_field`,
 * "password: must be at most 72 bytes"; a password change's "newPassword")
 * into plain words, or null when the message names no field this page knows.
 */
export function fieldProblem(message: string): string | null {
  const m = /^\s*(password|newPassword|email|name)\b/i.exec(message);
  if (!m) return null;
  switch (m[1]!.toLowerCase()) {
    case 'password':
    case 'newpassword':
      if (/\bNUL\b/.test(message)) return NUL_PROBLEM;
      return /most|long/i.test(message)
        ? 'This password is too long: at most 72 bytes fit (plain letters and digits take 1 byte each, accented letters 2, emoji 4). Shorten it.'
        : 'This password is too short. Use at least 8 characters.';
    case 'email':
      if (INVISIBLE.test(message)) return `This email address was not accepted: ${INVISIBLE_PROBLEM}`;
      return 'This email address was not accepted. Check it and try again.';
    default:
      if (INVISIBLE.test(message)) return `This name was not accepted: ${INVISIBLE_PROBLEM}`;
      if (/UTF-8/i.test(message)) return 'This name was not accepted: part of it is not valid text. Type it again.';
      if (/most|long/i.test(message)) return 'This name was not accepted: use at most 100 characters.';
      return 'This name was not accepted. Check it and try again.';
  }
}

/**
 * INVISIBLE matches the server's refusal of an email or name with control or
 * bidirectional formatting characters (transport/auth/validate.go
 * textProblem; an email's "must not contain invisible characters").
 */
const INVISIBLE = /control|bidirectional|invisible/i;
const INVISIBLE_PROBLEM = 'it contains invisible formatting or control characters; type it again without them.';
