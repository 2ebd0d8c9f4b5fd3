import { describe, expect, it } from 'vitest';
import { deleteAccountErrorText, deletePasswordProblem } from './account';
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
