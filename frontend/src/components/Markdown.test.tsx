// A code block's Copy button in the DOM (jsdom): what it shows and what a
// screen reader is told; an image placeholder inside a link.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetRevealed } from '../lib/images';
import { PoliteStatus } from './App';
import { COPIED_MS, Markdown } from './Markdown';
import { mountEach } from './testkit';

const copy = vi.hoisted(() => ({ ok: true }));
vi.mock('../lib/clipboard', () => ({ copyText: async () => copy.ok }));

const mount = mountEach();

function render() {
  act(() =>
    mount.root.render(
      <>
        <Markdown text={'```python\nprint(1)\n```'} />
        <PoliteStatus />
      </>,
    ),
  );
  return mount.host.querySelector<HTMLButtonElement>('button.code-copy')!;
}

async function click(button: HTMLButtonElement) {
  await act(async () => button.click());
}

const said = () => mount.host.querySelector('[role="status"]')?.textContent;

describe('code block Copy button', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    vi.useRealTimers();
    copy.ok = true;
  });

  it.each([
    ['copied', true, 'Copied', 'Code copied.'],
    ['not copied', false, 'Copy failed', 'Could not copy the code.'],
  ])('%s: says so on the button and to a screen reader, keeps its name, and shows Copy again', async (_name, ok, shown, told) => {
    copy.ok = ok;
    const button = render();
    await click(button);
    expect(button.textContent).toBe(shown);
    expect(said()).toBe(told);
    expect(button.getAttribute('aria-label')).toBe('Copy python code');
    act(() => vi.advanceTimersByTime(COPIED_MS));
    expect(button.textContent).toBe('Copy');
  });

  it('a second click restarts the moment and is told again', async () => {
    const button = render();
    await click(button);
    const first = mount.host.querySelector('[role="status"] p');
    act(() => vi.advanceTimersByTime(COPIED_MS - 500));
    await click(button);
    expect(mount.host.querySelector('[role="status"] p')).not.toBe(first); // a new node: announced again
    act(() => vi.advanceTimersByTime(COPIED_MS - 1));
    expect(button.textContent).toBe('Copied');
    act(() => vi.advanceTimersByTime(1));
    expect(button.textContent).toBe('Copy');
  });
});

describe('a streaming answer', () => {
  it('shows its open code block unhighlighted, growing, and highlights it when the answer ends', () => {
    const head = 'The code:\n\n```python\n';
    const code = () => mount.host.querySelector('.code-block code')!;
    act(() => mount.root.render(<Markdown text={head + 'def f():\n'} growing />));
    act(() => mount.root.render(<Markdown text={head + 'def f():\n    return 1\n'} growing />));
    expect(code().textContent).toBe('def f():\n    return 1\n');
    expect(code().querySelector('span')).toBeNull();
    expect(mount.host.querySelector('.code-lang')?.textContent).toBe('python');
    act(() => mount.root.render(<Markdown text={head + 'def f():\n    return 1\n```'} />));
    expect(code().querySelector('.hljs-keyword')?.textContent).toBe('def');
    expect(code().textContent).toBe('def f():\n    return 1\n');
  });
});

describe('a streaming code block', () => {
  // Its block's markup is set anew at every token (Block): the Copy button
  // that had the focus went with it, the focus to the page.
  it.each([
    ['the only code block', 'Here:\n\n```python\nprint(1)\n', 0],
    ['the second code block of its block', '- a\n\n  ```js\n  x()\n  ```\n\n  ```python\n  print(1)\n', 1],
  ])('keeps the focus on its Copy button as tokens come: %s', (_name, text, copyIndex) => {
    act(() => mount.root.render(<Markdown text={text} growing />));
    const copies = () => [...mount.host.querySelectorAll<HTMLButtonElement>('.md-block:last-child button.code-copy')];
    copies()[copyIndex]!.focus();
    for (const more of ['print(2)\n', 'print(3)\n']) {
      const before = copies()[copyIndex]!;
      text += copyIndex ? `  ${more}` : more;
      act(() => mount.root.render(<Markdown text={text} growing />));
      expect(before.isConnected).toBe(false); // rebuilt: the case of this test
      expect(document.activeElement).toBe(copies()[copyIndex]);
    }
  });

  it('gives the focus back without scrolling to its Copy button', () => {
    // focus() scrolls to the element by default: a reader who scrolled on to
    // read the growing code was taken back up to the button at every token.
    let text = 'Here:\n\n```python\nprint(1)\n';
    act(() => mount.root.render(<Markdown text={text} growing />));
    mount.host.querySelector<HTMLButtonElement>('button.code-copy')!.focus();
    const focus = vi.spyOn(HTMLElement.prototype, 'focus');
    try {
      text += 'print(2)\n';
      act(() => mount.root.render(<Markdown text={text} growing />));
      const copy = mount.host.querySelector<HTMLButtonElement>('button.code-copy')!;
      expect(document.activeElement).toBe(copy);
      expect(focus.mock.contexts).toEqual([copy]);
      expect(focus.mock.calls).toEqual([[{ preventScroll: true }]]);
    } finally {
      focus.mockRestore();
    }
  });

  it('takes no focus it did not have', () => {
    let text = '```python\nprint(1)\n';
    act(() => mount.root.render(<Markdown text={text} growing />));
    const outside = document.createElement('button');
    document.body.append(outside);
    outside.focus();
    text += 'print(2)\n';
    act(() => mount.root.render(<Markdown text={text} growing />));
    expect(document.activeElement).toBe(outside);
    outside.remove();
  });
});

describe('an image placeholder inside a link', () => {
  afterEach(() => forgetRevealed());

  it('loads the image and does not follow the link', () => {
    const text = '[![diagram](https://images.example/a.png)](https://evil.example/collect?q=secret)';
    act(() => mount.root.render(<Markdown text={text} />));
    const link = mount.host.querySelector('a')!;
    expect(link.getAttribute('href')).toBe('https://evil.example/collect?q=secret');
    const button = link.querySelector<HTMLButtonElement>('button.remote-image')!;
    const click = new MouseEvent('click', { bubbles: true, cancelable: true });
    act(() => void button.dispatchEvent(click));
    expect(click.defaultPrevented).toBe(true); // the link's activation is cancelled
    expect(link.querySelector('button.remote-image')).toBeNull();
    expect(link.querySelector('img')?.getAttribute('src')).toBe('https://images.example/a.png');
  });
});
