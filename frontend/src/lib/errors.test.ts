// How failures read to a person.

import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { errorText, formatWait } from './errors';

describe('errorText', () => {
  it.each([
    [new ApiError(429, 'rate_limited', 'Too many requests', 45), 'Too many requests (try again in 45 seconds)'],
    [new ApiError(429, 'rate_limited', 'Too many requests', 1), 'Too many requests (try again in 1 second)'],
    [new ApiError(429, 'rate_limited', 'Too many requests', 3600), 'Too many requests (try again in 60 minutes)'],
    [new ApiError(429, 'rate_limited', 'Too many requests'), 'Too many requests'],
    [new ApiError(500, 'internal', 'Something broke'), 'Something broke'],
    [new Error('plain'), 'plain'],
  ])('%s reads %j', (err, text) => {
    expect(errorText(err)).toBe(text);
  });

  it('says a wait as the sign-in page does', () => {
    expect(errorText(new ApiError(429, 'rate_limited', 'Slow down', 300))).toContain(formatWait(300));
  });
});
