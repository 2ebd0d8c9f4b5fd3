// Test stand-ins shared by the components' tests (jsdom): a React root
// mounted for each test, and one message rendered as the thread renders it.
// Not part of the app.

import { act, useRef, type ComponentProps } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ComposerBox } from '../hooks/composerBox';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { Message } from '../lib/protocol';
import { Composer } from './Composer';
import { MessageItem } from './MessageItem';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** Mount is an element in the document with a React root on it. */
export interface Mount {
  host: HTMLDivElement;
  root: Root;
}

/** mountEach makes a Mount before each test of the file and removes it after. */
export function mountEach(): Mount {
  const m = {} as Mount;
  beforeEach(() => {
    m.host = document.createElement('div');
    document.body.append(m.host);
    m.root = createRoot(m.host);
  });
  afterEach(() => {
    act(() => m.root.unmount());
    m.host.remove();
  });
  return m;
}

/**
 * renderMessage renders message in m as the thread would, with props over
 * the defaults, and below it the conversation's composer (the message box).
 * Rendered again in the same mount, the message keeps its state (an edit
 * box open).
 */
export function renderMessage(m: Mount, message: Message, props: Partial<ComponentProps<typeof MessageItem>> = {}) {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch });
  act(() => m.root.render(<MessageWithComposer app={app} message={message} props={props} />));
}

function MessageWithComposer({ app, message, props }: { app: ChatApp; message: Message; props: Partial<ComponentProps<typeof MessageItem>> }) {
  const box = useRef<HTMLTextAreaElement>(null);
  return (
    <AppProvider value={app}>
      <ComposerBox.Provider value={box}>
        <MessageItem message={message} version={1} versions={1} locked={false} modelName="M" queued={false} linkUp unconfirmed={false} thinking={undefined} {...props} />
        <Composer draftKey="new" streaming={false} busy={false} />
      </ComposerBox.Provider>
    </AppProvider>
  );
}
