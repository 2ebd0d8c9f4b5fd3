// How failures read to a person.

import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { SERVER_FAULT, UNREACHABLE, errorText, formatWait, isConnectionError, serverUnavailable, withoutRetryAdvice } from './errors';

describe('withoutRetryAdvice', () => {
  it.each([
    ['too many changes to conversations; try again in a moment', 'too many changes to conversations'],
    ['The server is shutting down; retry', 'The server is shutting down'],
    ['too many new conversations; wait a moment', 'too many new conversations'],
    ['the server did not answer in time; retry.', 'the server did not answer in time'],
    ['The model provider had an error; try again in 30s.', 'The model provider had an error'],
    ['no model is available: down; try again later', 'no model is available: down'],
    // More than the advice: kept whole.
    ['model "m" is not available right now (down); try again later, or pick another model', 'model "m" is not available right now (down); try again later, or pick another model'],
    ['retry', 'retry'],
    ['Too many requests', 'Too many requests'],
  ])('%j reads %j', (text, want) => {
    expect(withoutRetryAdvice(text)).toBe(want);
  });
});

describe('errorText', () => {
  it.each([
    [new ApiError(429, 'rate_limited', 'Too many requests', 45), 'Too many requests; try again in 45 seconds.'],
    [new ApiError(429, 'rate_limited', 'Too many requests', 1), 'Too many requests; try again in 1 second.'],
    [new ApiError(429, 'rate_limited', 'Too many requests', 3600), 'Too many requests; try again in 60 minutes.'],
    // chatd's own advice to ask again gives way to the wait (transport/api/edits.go, conversations.go).
    [new ApiError(429, 'rate_limited', 'too many changes to conversations; try again in a moment', 45), 'Too many changes to conversations; try again in 45 seconds.'],
    [new ApiError(429, 'rate_limited', 'too many searches; try again in a moment', 30), 'Too many searches; try again in 30 seconds.'],
    [new ApiError(429, 'rate_limited', 'too many sign-ups from this address; retry later.', 61), 'Too many sign-ups from this address; try again in 61 seconds.'],
    [new ApiError(429, 'rate_limited', 'Too many requests'), 'Too many requests'],
    [new Error('plain'), 'plain'],
  ])('%s reads %j', (err, text) => {
    expect(errorText(err)).toBe(text);
  });

  // A proxy's answer carries no chatd body: over HTTP/2 (nginx.conf) its
  // status text is empty, so the message was "HTTP 502", shown as it was.
  it.each([
    ['a proxy\'s 502 over HTTP/2', new ApiError(502, 'http_502', 'HTTP 502'), UNREACHABLE],
    ['a proxy\'s 503 over HTTP/1.1', new ApiError(503, 'http_503', 'Service Unavailable'), UNREACHABLE],
    ['a proxy\'s 504', new ApiError(504, 'http_504', 'HTTP 504'), UNREACHABLE],
    ['chatd\'s 500', new ApiError(500, 'internal', 'internal server error'), SERVER_FAULT],
    ['an internal error frame', new ApiError(0, 'internal', 'internal error'), SERVER_FAULT],
    ['a proxy\'s 500', new ApiError(500, 'http_500', 'HTTP 500'), SERVER_FAULT],
    ['a proxy\'s 413', new ApiError(413, 'http_413', 'HTTP 413'), 'This request is too large for the server (HTTP 413).'],
    ['a proxy\'s 404', new ApiError(404, 'http_404', ''), 'The server refused this request (HTTP 404). Reload the page and try again.'],
    ['chatd\'s own 503 keeps its words', new ApiError(503, 'unavailable', 'server shutting down; try again later'), 'server shutting down; try again later'],
    ['no answer keeps its words', new ApiError(0, 'network', 'The server cannot be reached. Check your connection.'), 'The server cannot be reached. Check your connection.'],
  ])('%s', (_name, err, text) => {
    expect(errorText(err)).toBe(text);
    expect(errorText(err)).not.toMatch(/^HTTP \d+$|internal server error/);
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
