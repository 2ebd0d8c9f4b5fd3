// The quiet connection status: connected, reconnecting, offline, or the
// HTTP-streaming fallback.

import { useApp, useAppState } from '../hooks/app';

/** StatusLine renders the live channel's state. */
export function StatusLine() {
  const app = useApp();
  const link = useAppState((s) => s.link);
  let text: string;
  if (link.state === 'connected') text = link.kind === 'sse' ? 'Live updates via HTTP streaming' : 'Connected';
  else if (link.state === 'connecting') text = 'Connecting…';
  else if (link.state === 'reconnecting') text = 'Reconnecting…';
  else text = 'Offline';
  return (
    <div className={`status-line link-${link.state}`} role="status" aria-live="polite" data-transport={link.kind} data-state={link.state}>
      <span className="dot" aria-hidden="true" />
      <span className="status-text">{text}</span>
      {link.detail && link.state !== 'connected' && <span className="status-detail"> · {link.detail}</span>}
      {link.state === 'offline' && (
        <button type="button" className="link-button" onClick={() => app.retryConnection()}>
          Retry
        </button>
      )}
    </div>
  );
}
