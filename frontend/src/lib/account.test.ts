import { describe, expect, it } from 'vitest';
import { changePasswordProblem, changePasswordRefusal, deleteAccountRefusal, deleteAccountErrorText, deletePasswordProblem } from './account';
import { ApiError } from './api';

describe('deleteAccountErrorText', () => {
  it.each([
    ['a wrong password', new ApiError(401, 'unauthorized', 'wrong password'), 'Wrong password.'],
    ['an account deleted meanwhile', new ApiError(401, 'unauthorized', 'the account no longer exists'), 'The account no longer exists.'],
    ['a missing password', new ApiError(400, 'invalid_field', 'password: is required to delete the account'), 'The password is required to delete the account.'],
    ['a password too long', new ApiError(400, 'invalid_field', 'password: must be at most 72 bytes'), 'The password must be at most 72 bytes.'],
    ['a bad request', new ApiError(400, 'bad_request', 'the body is not JSON'), 'The body is not JSON.'],
    ['repeated failures', new ApiError(429, 'rate_limited', 'too many attempts', 42), 'Too many attempts. Try again in 42 seconds.'],
    ['repeated failures, for minutes', new ApiError(429, 'rate_limited', 'too many attempts', 600), 'Too many attempts. Try again in 10 minutes.'],
    ['repeated failures, no Retry-After', new ApiError(429, 'rate_limited', 'too many attempts'), 'Too many attempts. Try again later.'],
    ['a busy server', new ApiError(503, 'unavailable', 'the server is busy; retry in a moment'), 'The server is busy; retry in a moment. Your account was not deleted.'],
    ['no server', new ApiError(0, 'network', 'The server cannot be reached. Check your connection.'), 'The server cannot be reached. Check your connection.'],
    ['a proxy\'s 502 over HTTP/2 (a restart)', new ApiError(502, 'http_502', 'HTTP 502'), 'The server cannot be reached or is restarting; try again in a moment.'],
    ['chatd\'s 500', new ApiError(500, 'internal', 'internal server error'), 'Something went wrong on the server. Try again; if it keeps happening, tell your administrator.'],
    ['anything else', new Error('boom'), 'boom'],
  ])('%s', (_name, err, want) => {
    expect(deleteAccountErrorText(err)).toBe(want);
  });
});

describe('deletePasswordProblem', () => {
  it('asks for the password before anything is sent', () => {
    expect(deletePasswordProblem('')).toBe('Enter your password to delete your account.');
    expect(deletePasswordProblem('x')).toBeNull();
  });
});

describe('changePasswordRefusal', () => {
  it.each([
    ['a wrong current password', new ApiError(401, 'unauthorized', 'wrong password'), 'currentPassword', 'The current password is wrong.'],
    ['an account deleted meanwhile', new ApiError(401, 'unauthorized', 'the account no longer exists'), null, 'The account no longer exists.'],
    ['a missing current password', new ApiError(400, 'invalid_field', 'currentPassword: is required'), 'currentPassword', 'Enter your current password.'],
    ['a current password too long', new ApiError(400, 'invalid_field', 'currentPassword: must be at most 72 bytes'), 'currentPassword', 'The current password must be at most 72 bytes.'],
    ['a new password too short', new ApiError(400, 'invalid_field', 'newPassword: must be at least 8 characters'), 'newPassword', 'This password is too short. Use at least 8 characters.'],
    ['a new password too long', new ApiError(400, 'invalid_field', 'newPassword: must be at most 72 bytes'), 'newPassword', expect.stringMatching(/^This password is too long: at most 72 bytes/)],
    ['a new password with NUL', new ApiError(400, 'invalid_field', 'newPassword: must not contain NUL characters'), 'newPassword', expect.stringMatching(/NUL character/)],
    ['a bad request', new ApiError(400, 'bad_request', 'the body is not JSON'), null, 'The body is not JSON.'],
    ['repeated failures', new ApiError(429, 'rate_limited', 'too many attempts', 42), null, 'Too many attempts. Try again in 42 seconds.'],
    ['repeated failures, no Retry-After', new ApiError(429, 'rate_limited', 'too many attempts'), null, 'Too many attempts. Try again later.'],
    [
      'another change or a sign-out at the same moment (409)',
      new ApiError(409, 'conflict', 'the password or the sessions of this account changed meanwhile; sign in again'),
      null,
      'Your password was not changed: the password was changed, or the account signed out, elsewhere at the same moment. If you are still signed in, try again.',
    ],
    [
      'its token refused after another tab\'s change (401 invalid_token, the session going on with the new token)',
      new ApiError(401, 'unauthorized', 'invalid, expired or revoked token', undefined, true),
      null,
      'Your password was not changed: the password was changed, or the account signed out, elsewhere at the same moment. If you are still signed in, try again.',
    ],
    ['a busy server', new ApiError(503, 'unavailable', 'the server is busy; retry in a moment'), null, 'The server is busy; retry in a moment. Your password was not changed.'],
    ['no answer in time (given up: it may have been set)', new ApiError(0, 'timeout', 'The server did not answer in time.'), null, expect.stringMatching(/^Your password may not have been changed/)],
    [
      'a change the server could not tell was saved (503)',
      new ApiError(503, 'unavailable', 'the password may have been changed: the server could not tell whether it was saved; sign in with the new password, or try again'),
      null,
      'Your password may not have been changed: the server could not tell whether it was saved. If you are still signed in, try again; if you were signed out, sign in with the new password.',
    ],
    ['no server', new ApiError(0, 'network', 'The server cannot be reached. Check your connection.'), null, 'The server cannot be reached. Check your connection.'],
    ['a proxy\'s 503 over HTTP/2 (a restart)', new ApiError(503, 'http_503', 'HTTP 503'), null, 'The server cannot be reached or is restarting; try again in a moment. Your password was not changed.'],
    ['a proxy\'s 502', new ApiError(502, 'http_502', 'HTTP 502'), null, 'The server cannot be reached or is restarting; try again in a moment.'],
    ['anything else', new Error('boom'), null, 'boom'],
  ])('%s', (_name, err, field, text) => {
    expect(changePasswordRefusal(err)).toMatchObject({ field, text });
  });

  it.each([
    ['with Retry-After, the wait is given', new ApiError(429, 'rate_limited', 'too many attempts', 42), 42],
    ['without, none', new ApiError(429, 'rate_limited', 'too many attempts'), undefined],
    ['other refusals wait for nothing', new ApiError(401, 'unauthorized', 'wrong password'), undefined],
  ])('repeated failures: %s', (_name, err, retryAfter) => {
    expect(changePasswordRefusal(err).retryAfter).toBe(retryAfter);
    expect(deleteAccountRefusal(err).retryAfter).toBe(retryAfter);
  });
});

describe('changePasswordProblem', () => {
  it('asks for the current password, and a new one under registration\'s rules, before anything is sent', () => {
    expect(changePasswordProblem('', 'new password 1')).toEqual({ field: 'currentPassword', text: 'Enter your current password.' });
    expect(changePasswordProblem('old', '')).toEqual({ field: 'newPassword', text: 'Choose a password of at least 8 characters.' });
    expect(changePasswordProblem('old', 'short')).toMatchObject({ field: 'newPassword', text: expect.stringMatching(/too short: 5 characters/) });
    expect(changePasswordProblem('old', 'a'.repeat(73))).toMatchObject({ field: 'newPassword', text: expect.stringMatching(/too long: it takes 73 bytes/) });
    expect(changePasswordProblem('old', 'new password 1')).toBeNull();
  });
});
