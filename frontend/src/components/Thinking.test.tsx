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
