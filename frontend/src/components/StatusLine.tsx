// The quiet connection status: connected, reconnecting, offline, or the
// HTTP-streaming fallback; and the page's one announcement of it.

import { useRef } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { useFocusInsteadWhenGone } from '../hooks/composerBox';
import { sentence } from '../lib/errors';
import { sayPolitely } from '../lib/politeStatus';
import type { TransportStatus } from '../lib/transport';

/**
 * StatusLine renders the live channel's state, with a Retry while offline.
 * It is not a live region: LinkAnnouncer says the state once for the page.
 */
export function StatusLine() {
  const link = useAppState((s) => s.link);
  return (
    // Focusable (not by Tab) for its Retry's focus when it goes while the chat is inert (focusInstead).
    <div className={`status-line link-${link.state}`} data-transport={link.kind} data-state={link.state} tabIndex={-1}>
      <span className="dot" aria-hidden="true" />
      <span className="status-text">{stateText(link)}</span>
      {link.detail && link.state !== 'connected' && <span className="status-detail"> · {link.detail}</span>}
      {link.state === 'offline' && <RetryButton />}
    </div>
  );
}

/**
 * RetryButton reconnects now. It stays while the attempt runs (the link
 * stays offline until connected, ws.ts), the reader told politely that it
 * is tried; gone once connected, it hands its focus to the message box
 * (the status line while the drawer covers the chat: focusInstead), where
 * it fell to the page.
 */
export function RetryButton() {
  const app = useApp();
  const ref = useRef<HTMLButtonElement>(null);
  useFocusInsteadWhenGone(ref);
  const retry = () => {
    sayPolitely('Trying to reconnect…');
    app.retryConnection();
  };
  return (
    <button ref={ref} type="button" className="link-button" onClick={retry}>
      Retry
    </button>
  );
}

/** stateText names the live channel's state in a word or two. */
function stateText(link: TransportStatus): string {
  if (link.state === 'connected') return link.kind === 'sse' ? 'Live updates via HTTP streaming' : 'Connected';
  if (link.state === 'connecting') return 'Connecting…';
  if (link.state === 'reconnecting') return 'Reconnecting…';
  return 'Offline';
}

/**
 * linkWords says the live channel's state as LinkAnnouncer announces it. A
 * detail that is a sentence of its own ("The server closed the connection
 * (policy violation).") follows the state as one; a few words ("live
 * updates via HTTP streaming") go in brackets.
 */
export function linkWords(link: TransportStatus): string {
  const detail = link.detail && link.state !== 'connected' ? link.detail.trim() : '';
  const whole = /[.!?…]$/.test(detail);
  const state = stateText(link);
  if (link.state === 'offline') {
    // Sends wait in their conversation's queue meanwhile and go out once connected (ChatApp.flushQueues):
    // after a close nothing reconnects after by itself (ws.ts), that is once Retry is pressed.
    const wait = `messages you send wait and go out once ${link.retryOnly ? 'you press Retry' : 'the connection is back'}.`;
    if (whole) return `${state}: ${detail} ${sentence(wait)}`;
    return `${state}${detail ? ` (${detail})` : ''}: ${wait}`;
  }
  if (whole) return `${state}${/[.!?…]$/.test(state) ? '' : '.'} ${detail}`;
  return `${state}${detail ? ` (${detail})` : ''}`;
}

/**
 * LinkAnnouncer is the page's one live region for the live channel's
 * state, visually hidden and outside the sidebar and the chat: the
 * sidebar's status line and the chat's offline notice (a narrow screen's)
 * show the state with their Retry but neither is live, so a change is
 * announced once whatever is shown (a phone with the drawer open shows
 * both, and heard an offline link twice; with it closed, only the notice).
 */
export function LinkAnnouncer() {
  const link = useAppState((s) => s.link);
  return (
    <div className="sr-only link-announcer" role="status">
      {linkWords(link)}
    </div>
  );
}
