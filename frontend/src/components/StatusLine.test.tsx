// How the live channel's state reads to a screen reader (LinkAnnouncer),
// with the details the transports really give.

import { describe, expect, it } from 'vitest';
import { TOO_MANY_CONNECTIONS_DETAIL, type TransportStatus } from '../lib/transport';
import { linkWords } from './StatusLine';

describe('linkWords', () => {
  it.each<[string, TransportStatus, string]>([
    [
      'offline after a policy close (ws.ts)',
      { state: 'offline', kind: 'ws', detail: 'The server closed the connection (policy violation).', retryOnly: true },
      'Offline: The server closed the connection (policy violation). Messages you send wait and go out once you press Retry.',
    ],
    [
      'offline, the server out of reach',
      { state: 'offline', kind: 'ws', detail: 'The server cannot be reached.' },
      'Offline: The server cannot be reached. Messages you send wait and go out once the connection is back.',
    ],
    ['offline with no detail', { state: 'offline', kind: 'ws' }, 'Offline: messages you send wait and go out once the connection is back.'],
    [
      'offline over HTTP streaming (a few words, not a sentence)',
      { state: 'offline', kind: 'sse', detail: 'live updates via HTTP streaming' },
      'Offline (live updates via HTTP streaming): messages you send wait and go out once the connection is back.',
    ],
    [
      'reconnecting after a 1013 (session not checkable)',
      { state: 'reconnecting', kind: 'ws', detail: 'The server cannot check the session right now.' },
      'Reconnecting… The server cannot check the session right now.',
    ],
    ['reconnecting, too many tabs', { state: 'reconnecting', kind: 'ws', detail: TOO_MANY_CONNECTIONS_DETAIL }, 'Reconnecting… Too many tabs or devices are connected.'],
    ['reconnecting over HTTP streaming', { state: 'reconnecting', kind: 'sse', detail: 'live updates via HTTP streaming' }, 'Reconnecting… (live updates via HTTP streaming)'],
    ['connected', { state: 'connected', kind: 'ws', detail: 'ignored' }, 'Connected'],
  ])('%s', (_name, link, words) => {
    expect(linkWords(link)).toBe(words);
    expect(linkWords(link)).not.toMatch(/\.\)|\)\.\)|\.\.|reconnecting.*reconnecting/i);
  });
});
