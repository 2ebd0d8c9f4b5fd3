// How failures read to a person.

import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { errorText, formatWait, isConnectionError, serverUnavailable } from './errors';

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

describe('isConnectionError', () => {
  it.each([
    ['no answer', new ApiError(0, 'network', 'Failed to fetch'), true],
    ['no ack in time', new ApiError(0, 'timeout', 'No answer'), true],
    ['a WebSocket frame refused unavailable (chatd\'s 503 over SSE)', new ApiError(0, 'unavailable', 'server shutting down'), true],
    ['chatd\'s 503', new ApiError(503, 'unavailable', 'try again'), true],
    ['a proxy\'s 502', new ApiError(502, 'bad_gateway', 'Bad Gateway'), true],
    ['a WebSocket frame refused unknown_model', new ApiError(0, 'unknown_model', 'model "x" is not available'), false],
    ['a WebSocket frame refused rate_limited', new ApiError(0, 'rate_limited', 'slow down'), false],
    ['a 400', new ApiError(400, 'unknown_model', 'model "x" is not available'), false],
    ['not an ApiError', new Error('plain'), false],
  ])('%s', (_name, err, want) => {
    expect(isConnectionError(err)).toBe(want);
  });
});

describe('serverUnavailable', () => {
  it.each([
    ['a WebSocket error frame unavailable', new ApiError(0, 'unavailable', 'no model is available: x; try again later'), 'no model is available: x; try again later'],
    ['chatd\'s 503 (its JSON body)', new ApiError(503, 'unavailable', 'no model is available: x; try again later'), 'no model is available: x; try again later'],
    ['a proxy\'s 503 (no chatd body)', new ApiError(503, 'http_503', 'Service Unavailable'), null],
    ['a proxy\'s 502', new ApiError(502, 'http_502', 'Bad Gateway'), null],
    ['no answer', new ApiError(0, 'network', 'Failed to fetch'), null],
    ['no ack in time', new ApiError(0, 'timeout', 'No answer'), null],
    ['a refusal for good', new ApiError(400, 'unknown_model', 'model "x" is not available'), null],
    ['not an ApiError', new Error('unavailable'), null],
  ])('%s', (_name, err, want) => {
    expect(serverUnavailable(err)).toBe(want);
  });
});
