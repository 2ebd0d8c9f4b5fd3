// An answer's Thinking section in the DOM (jsdom): its toggle.

import { act } from 'react';
import { describe, expect, it } from 'vitest';
import { Thinking } from './Thinking';
import { mountEach } from './testkit';

const mount = mountEach();

describe('Thinking toggle', () => {
  it('names in aria-controls only a section that is in the page', () => {
    act(() => mount.root.render(<Thinking reasoning="Let me see." times={undefined} thinkingNow={false} />));
    const toggle = mount.host.querySelector<HTMLButtonElement>('button.thinking-toggle')!;
    const controlled = () => toggle.getAttribute('aria-controls');
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(controlled()).toBeNull(); // collapsed: no section to point at
    act(() => toggle.click());
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(document.getElementById(controlled()!)?.textContent).toBe('Let me see.');
  });
});

describe('Thinking box while thinking', () => {
  /** fakeScroll gives the box a layout: 100 px tall, its content height from height(), scrollTop kept. */
  function fakeScroll(el: HTMLElement, height: () => number) {
    let top = 0;
    Object.defineProperty(el, 'clientHeight', { configurable: true, get: () => 100 });
    Object.defineProperty(el, 'scrollHeight', { configurable: true, get: height });
    Object.defineProperty(el, 'scrollTop', {
      configurable: true,
      get: () => top,
      set: (v: number) => {
        top = Math.max(0, Math.min(v, height() - 100));
      },
    });
  }

  function setUp() {
    let reasoning = 'line\n'.repeat(20);
    const render = () => act(() => mount.root.render(<Thinking reasoning={reasoning} times={undefined} thinkingNow={true} />));
    render();
    const box = mount.host.querySelector<HTMLElement>('.thinking-text')!;
    fakeScroll(box, () => reasoning.length * 2); // 5 characters a line, 10 px a line
    const grow = () => {
      reasoning += 'more\n'.repeat(10);
      render();
    };
    const scrollTo = (top: number) => {
      box.scrollTop = top;
      box.dispatchEvent(new Event('scroll'));
    };
    return { box, grow, scrollTo };
  }

  it('stays where the reader scrolled up to while more thinking arrives', () => {
    const { box, grow, scrollTo } = setUp();
    grow();
    expect(box.scrollTop).toBe(box.scrollHeight - 100); // followed so far
    scrollTo(100);
    grow();
    expect(box.scrollTop).toBe(100);
    grow();
    expect(box.scrollTop).toBe(100);
  });

  it('follows the newest thinking while the reader is at (or a few px from) the bottom', () => {
    const { box, grow, scrollTo } = setUp();
    grow();
    scrollTo(box.scrollHeight - 100);
    grow();
    expect(box.scrollTop).toBe(box.scrollHeight - 100);
    scrollTo(box.scrollHeight - 100 - 3);
    grow();
    expect(box.scrollTop).toBe(box.scrollHeight - 100);
    scrollTo(100); // up to reread, then back down: follows again
    scrollTo(box.scrollHeight - 100);
    grow();
    expect(box.scrollTop).toBe(box.scrollHeight - 100);
  });
});
