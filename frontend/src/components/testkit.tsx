// Test stand-ins shared by the components' tests (jsdom): a React root
// mounted for each test, and one message rendered as the thread renders it.
// Not part of the app.

import { act, useRef, type ComponentProps } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, onTestFinished } from 'vitest';
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

const LIVE = '[role="alert"], [role="status"], [role="log"], [aria-live]:not([aria-live="off"])';

/**
 * watchLive watches the live regions in el (those there now and those put
 * in later). The function it returns gives the text of each region whose
 * content or liveness changed since its last call, in the order of the
 * changes, leaving out regions emptied: what a screen reader would be
 * told meanwhile.
 */
export function watchLive(el: HTMLElement): () => string[] {
  // Records delivered to the callback (a microtask after the change, as
  // when the test awaits) are kept for the next call, with those not yet delivered.
  const delivered: MutationRecord[] = [];
  const observer = new MutationObserver((records) => delivered.push(...records));
  observer.observe(el, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['role', 'aria-live'] });
  onTestFinished(() => observer.disconnect());
  return () => {
    const changed = new Set<Element>();
    for (const r of [...delivered.splice(0), ...observer.takeRecords()]) {
      const node = r.target instanceof Element ? r.target : r.target.parentElement;
      const region = node?.closest(LIVE);
      if (region) changed.add(region);
      for (const n of r.addedNodes) if (n instanceof Element) for (const x of [n, ...n.querySelectorAll(LIVE)]) if (x.matches(LIVE)) changed.add(x);
    }
    return [...changed].filter((r) => r.isConnected).map((r) => r.textContent ?? '').filter(Boolean);
  };
}

/** typeInto sets the value of a text box as typing does, with its input event (React's onChange). */
export function typeInto(box: HTMLInputElement | HTMLTextAreaElement, value: string) {
  const proto = box instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  act(() => {
    Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(box, value);
    box.dispatchEvent(new Event('input', { bubbles: true }));
  });
}
