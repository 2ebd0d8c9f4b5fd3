import { describe, expect, it } from 'vitest';
import { compareTimes, formatDuration, parseTime } from './time';

describe('parseTime', () => {
  it.each([
    ['2026-01-01T00:00:05Z', Date.UTC(2026, 0, 1, 0, 0, 5), 0],
    ['2026-01-01T00:00:05.1Z', Date.UTC(2026, 0, 1, 0, 0, 5, 100), 0],
    ['2026-01-01T00:00:05.123456789Z', Date.UTC(2026, 0, 1, 0, 0, 5, 123), 456789],
    ['2026-01-01T00:00:05.0004Z', Date.UTC(2026, 0, 1, 0, 0, 5), 400000],
    ['2026-01-01T01:00:05.5+01:00', Date.UTC(2026, 0, 1, 0, 0, 5, 500), 0],
    ['2026-01-01', Date.UTC(2026, 0, 1), 0],
  ])('%s', (s, ms, ns) => {
    expect(parseTime(s)).toEqual({ ms, ns });
  });

  it('is null for what is not a time', () => {
    expect(parseTime('')).toBeNull();
    expect(parseTime('yesterday')).toBeNull();
  });
});

describe('compareTimes', () => {
  // Pairs in order, earlier first: each one misorders as strings.
  it.each([
    ['2026-01-01T00:00:05Z', '2026-01-01T00:00:05.5Z'],
    ['2026-01-01T00:00:05.1Z', '2026-01-01T00:00:05.15Z'],
    ['2026-01-01T00:00:05.123Z', '2026-01-01T00:00:05.1234Z'],
    ['2026-01-01T00:00:05.123456788Z', '2026-01-01T00:00:05.123456789Z'],
    ['2026-01-01T00:00:05.9Z', '2026-01-01T00:00:06Z'],
    ['2026-01-01T02:00:00+03:00', '2026-01-01T00:00:00Z'],
    ['', '2026-01-01T00:00:00Z'],
  ])('%s < %s', (earlier, later) => {
    expect(compareTimes(earlier, later)).toBeLessThan(0);
    expect(compareTimes(later, earlier)).toBeGreaterThan(0);
  });

  it('equal instants written differently are equal', () => {
    expect(compareTimes('2026-01-01T00:00:05.5Z', '2026-01-01T00:00:05.500Z')).toBe(0);
    expect(compareTimes('2026-01-01T01:00:05+01:00', '2026-01-01T00:00:05Z')).toBe(0);
    expect(compareTimes('x', 'x')).toBe(0);
  });
});

describe('formatDuration', () => {
  it.each([
    [1, 'up', '1 second'],
    [45, 'nearest', '45 seconds'],
    [89, 'up', '89 seconds'],
    [90, 'up', '2 minutes'],
    [125, 'up', '3 minutes'],
    [125, 'nearest', '2 minutes'],
    [155, 'nearest', '3 minutes'],
    [3600, 'up', '60 minutes'],
  ] as const)('%d s rounded %s reads %j', (seconds, round, text) => {
    expect(formatDuration(seconds, round)).toBe(text);
  });
});
