// This device's clock against the server's: the waits counted from the
// server's timestamps.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from './api';
import { startThinking, waitLabel, waitStart } from './reasoning';
import { noteServerDate, resetServerClock, serverToClient } from './serverClock';

const NOW = Date.parse('2026-12-06T12:00:00.500Z');
const httpDate = (ms: number) => new Date(ms).toUTCString();

afterEach(() => resetServerClock());

describe('noteServerDate', () => {
  it.each([
    ['in step', 0, 0],
    ['a second apart (the header has whole seconds)', -1000, 0],
    ['this device two minutes ahead', -120_000, 120_000],
    ['this device a minute behind', 60_000, -60_000],
  ])('%s', (_name, serverOffset, skew) => {
    noteServerDate(httpDate(NOW + serverOffset), NOW - 50, NOW + 50);
    expect(Math.round((serverToClient(NOW) - NOW) / 1000) * 1000).toBe(skew);
  });

  it.each([
    // name, the round trip, how far ahead this device's clock is by the answer, the skew then (minutes)
    ['a request spanning a sleep of the device (3 min): passed over', 180_000, 180_000, 3],
    ['a request of 11 s: passed over', 11_000, 0, 3],
    ['a request of 2 s, the clocks in step now: read', 2_000, 0, 0],
  ])('this device 3 min ahead, then an answer after %s', (_name, roundTrip, ahead, minutes) => {
    noteServerDate(httpDate(NOW - 180_000), NOW - 50, NOW + 50);
    noteServerDate(httpDate(NOW + roundTrip - ahead), NOW, NOW + roundTrip); // stamped as the trip ends
    expect(Math.round((serverToClient(NOW) - NOW) / 60_000)).toBe(minutes);
  });

  it('ignores an answer without a Date header or with a bad one', () => {
    noteServerDate(httpDate(NOW - 120_000), NOW, NOW);
    noteServerDate(null, NOW, NOW);
    noteServerDate('yesterday', NOW, NOW);
    expect(Math.round((serverToClient(NOW) - NOW) / 1000)).toBe(120);
  });
});

describe('a device whose clock is two minutes ahead of the server’s', () => {
  const created = new Date(NOW - 120_000).toISOString(); // the server's now, as it stamps a new answer

  it('counts a new answer’s wait and thinking from now, not from two minutes ago', () => {
    noteServerDate(httpDate(NOW - 120_000), NOW - 20, NOW + 20);
    const start = waitStart(created, NOW + 100);
    expect(waitLabel(false, start, NOW + 4000).seconds).toBe('4 s');
    expect(startThinking(undefined, created, NOW + 100).start).toBeGreaterThanOrEqual(NOW - 1000);
  });

  it('learns it from the API’s answers', async () => {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    try {
      const fetchImpl = async () => new Response('{"models":[]}', { status: 200, headers: { Date: httpDate(NOW - 120_000), 'Content-Type': 'application/json' } });
      const api = new ApiClient({ token: () => 't', onUnauthorized: () => undefined, fetch: fetchImpl as typeof fetch });
      await api.models();
      expect(waitLabel(false, waitStart(created, NOW + 100), NOW + 4000).seconds).toBe('4 s');
    } finally {
      vi.useRealTimers();
    }
  });
});
