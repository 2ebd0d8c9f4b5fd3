// What stands in the chat's place when rendering it failed.

import { Component, type ErrorInfo, type ReactNode } from 'react';
import { Icon } from './icons';

/** CHAT_FAILED is what the reader is told when the conversation could not be shown. */
export const CHAT_FAILED = 'This conversation could not be shown.';

/** ChatErrorBoundaryProps: the chat, and the drawer's opener (the sidebar stays usable on a phone). */
interface ChatErrorBoundaryProps {
  children: ReactNode;
  /** The conversation shown: another one tries the chat again. */
  conversationId: string | null;
  onOpenSidebar: () => void;
  /** Reloads the page (a test's stand-in; default location.reload). */
  reload?: () => void;
}

/** BoundaryState: whether rendering the chat failed, for the conversation shown then. */
interface BoundaryState {
  failed: boolean;
  shown: string | null;
}

/**
 * ChatErrorBoundary catches an error thrown while the chat renders: React
 * otherwise unmounts the whole app, leaving a blank page. It says so in the
 * chat's place, an alert, with a Reload button (focused: the control the
 * reader had went with the chat), and the sidebar stays. Another
 * conversation shown tries again. It is not keyed by the conversation: a
 * key would rebuild the working chat at every change, a new chat's first
 * send included, and the message box (with the focus, and a phone's
 * keyboard) would be replaced mid-send.
 */
export class ChatErrorBoundary extends Component<ChatErrorBoundaryProps, BoundaryState> {
  override state: BoundaryState = { failed: false, shown: this.props.conversationId };

  static getDerivedStateFromProps(props: ChatErrorBoundaryProps, state: BoundaryState): BoundaryState | null {
    return props.conversationId === state.shown ? null : { failed: false, shown: props.conversationId };
  }

  static getDerivedStateFromError(): Partial<BoundaryState> {
    return { failed: true };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error('chat view failed', error, info.componentStack);
  }

  override render(): ReactNode {
    if (!this.state.failed) return this.props.children;
    const reload = this.props.reload ?? (() => location.reload());
    return (
      <main className="chat" aria-label="Conversation">
        <header className="chat-head">
          <button type="button" className="icon only-narrow" aria-label="Open conversations" title="Conversations" onClick={this.props.onOpenSidebar}>
            <Icon name="menu" />
          </button>
        </header>
        <div className="empty" role="alert">
          <h2>{CHAT_FAILED}</h2>
          <p>Something went wrong while showing it. Reload the page to try again; other conversations can still be opened.</p>
          <button type="button" autoFocus onClick={reload}>
            Reload
          </button>
        </div>
      </main>
    );
  }
}
