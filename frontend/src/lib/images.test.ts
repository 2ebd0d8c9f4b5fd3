import { afterEach, describe, expect, it } from 'vitest';
import { forgetRevealed, imageHost, revealImage, revealKnown } from './images';
import { renderMarkdown } from './markdown';

afterEach(() => forgetRevealed());

function rendered(src: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = renderMarkdown(src);
  document.body.append(el);
  return el;
}

describe('imageHost', () => {
  const cases: Array<[string, string | null]> = [
    ['https://img.example/a.png', 'img.example'],
    ['https://img.example:8443/a.png', 'img.example:8443'],
    ['http://img.example/a.png', null],
    ['data:image/png;base64,AAAA', null],
    ['javascript:alert(1)', null],
    ['not a url', null],
  ];
  for (const [src, host] of cases) it(src, () => expect(imageHost(src)).toBe(host));
});

describe('revealImage', () => {
  it('puts an <img> with referrerpolicy no-referrer in place of the placeholder, only on request', () => {
    const el = rendered('look: ![a chart](https://img.example/chart.png?q=1)');
    expect(el.querySelector('img')).toBeNull();
    const img = revealImage(el.querySelector<HTMLElement>('button.remote-image')!)!;
    expect(el.querySelector('button.remote-image')).toBeNull();
    expect(el.querySelector('img')).toBe(img);
    expect(img.getAttribute('src')).toBe('https://img.example/chart.png?q=1');
    expect(img.getAttribute('referrerpolicy')).toBe('no-referrer');
    expect(img.alt).toBe('a chart');
  });

  it('hands the focus of the button to the image it shows, not the page', () => {
    const el = rendered('look: ![a chart](https://img.example/chart.png)');
    const button = el.querySelector<HTMLElement>('button.remote-image')!;
    button.focus();
    const img = revealImage(button)!;
    expect(document.activeElement).toBe(img);
    expect(img.tabIndex).toBe(-1); // by script only: not a stop of Tab
  });

  it('refuses a placeholder whose data-src is not https', () => {
    const b = document.createElement('button');
    b.dataset.src = 'javascript:alert(1)';
    document.body.append(b);
    expect(revealImage(b)).toBeNull();
    expect(b.isConnected).toBe(true);
  });

  it('shows an image again when its block is rendered anew, and no other', () => {
    const first = rendered('![x](https://img.example/x.png)');
    revealImage(first.querySelector<HTMLElement>('button.remote-image')!);
    const again = rendered('![x](https://img.example/x.png) and ![y](https://other.example/y.png)');
    revealKnown(again);
    expect([...again.querySelectorAll('img')].map((i) => i.getAttribute('src'))).toEqual(['https://img.example/x.png']);
    expect(again.querySelectorAll('button.remote-image').length).toBe(1);
  });
});
