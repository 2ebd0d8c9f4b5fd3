// The modal dialog in the DOM (jsdom): where focus goes, and that it stays
// where the user put it while the page around the dialog re-renders.

import { act, useState } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dialog } from './Dialog';
import { mountEach } from './testkit';

const mount = mountEach();
let rerender: () => void = () => undefined;
let closed = 0;

/** Page re-renders on demand and hands the dialog a new onClose each time, as an inline arrow does. */
function Page() {
  const [n, setN] = useState(0);
  rerender = () => setN((x) => x + 1);
  return (
    <>
      <button type="button" id="opener">
        open {n}
      </button>
      <Dialog
        title="Delete conversation?"
        onClose={() => closed++}
        actions={
          <>
            <button type="button" data-autofocus>
              Cancel
            </button>
            <button type="button">Delete</button>
          </>
        }
      >
        <p>Gone for good. {n}</p>
      </Dialog>
    </>
  );
}

function button(name: string): HTMLButtonElement {
  const b = [...mount.host.querySelectorAll('button')].find((x) => x.textContent === name);
  if (!b) throw new Error(`no button ${name}`);
  return b;
}

beforeEach(() => {
  closed = 0;
});

describe('Dialog', () => {
  it('focuses its autofocus element when it opens', () => {
    act(() => mount.root.render(<Page />));
    expect(document.activeElement).toBe(button('Cancel'));
  });

  it('keeps the focus where the user moved it while the page re-renders with a new onClose', () => {
    act(() => mount.root.render(<Page />));
    button('Delete').focus();
    act(() => rerender());
    expect(mount.host.textContent).toContain('Gone for good. 1');
    expect(document.activeElement).toBe(button('Delete'));
  });

  it.each([
    ['Tab', false, 'Cancel'],
    ['Shift+Tab', true, 'Delete'],
  ])('%s with the focus fallen out of it (to the page) brings the focus back into it, not to the page behind', (_name, shiftKey, to) => {
    act(() => mount.root.render(<Page />));
    (document.activeElement as HTMLElement).blur();
    expect(document.activeElement).toBe(document.body);
    const ev = new KeyboardEvent('keydown', { key: 'Tab', shiftKey, bubbles: true, cancelable: true });
    act(() => {
      document.body.dispatchEvent(ev);
    });
    expect(ev.defaultPrevented).toBe(true);
    expect(document.activeElement).toBe(button(to));
  });

  it('calls the latest onClose on Escape, once', () => {
    act(() => mount.root.render(<Page />));
    act(() => rerender());
    act(() => {
      document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    });
    expect(closed).toBe(1);
  });

  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('stays open on the Escape that cancels a conversion %s', (_name, init) => {
    closed = 0;
    act(() => mount.root.render(<Page />));
    act(() => {
      document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, ...init }));
    });
    expect(closed).toBe(0);
    act(() => {
      document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    });
    expect(closed).toBe(1);
  });
});

describe('Dialog backdrop press', () => {
  // Toasts stand under the backdrop (app.css), dimmed: a press on one's
  // Dismiss lands on the backdrop, whose press closed the dialog and lost
  // what was typed in it. jsdom lays nothing out: elementsFromPoint (all
  // the elements at a point, top first) is stubbed with what Chromium gives.
  const TOAST = { x: 640, y: 30 };
  afterEach(() => {
    delete (document as { elementsFromPoint?: unknown }).elementsFromPoint;
  });

  it.each([
    ['over a toast (its Dismiss) leaves the dialog open', TOAST, 0],
    ['elsewhere on the backdrop closes the dialog', { x: 5, y: 700 }, 1],
  ])('%s', (_name, at, closes) => {
    act(() =>
      mount.root.render(
        <>
          <div className="toasts">
            <div className="toast toast-error">
              <span>Could not save the title.</span>
              <button type="button" aria-label="Dismiss" />
            </div>
          </div>
          <Page />
        </>,
      ),
    );
    const backdrop = mount.host.querySelector<HTMLElement>('.backdrop')!;
    const dismiss = mount.host.querySelector<HTMLElement>('.toast button')!;
    const page = [mount.host, document.body, document.documentElement];
    document.elementsFromPoint = (x: number, y: number) =>
      x === TOAST.x && y === TOAST.y ? [backdrop, dismiss, dismiss.parentElement!, dismiss.closest('.toasts')!, ...page] : [backdrop, ...page];
    act(() => {
      backdrop.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, clientX: at.x, clientY: at.y }));
    });
    expect(closed).toBe(closes);
  });
});
