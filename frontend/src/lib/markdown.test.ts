import { beforeEach, describe, expect, it } from 'vitest';
import { clearMarkdownCache, markdownCacheSize, renderBlocks, renderMarkdown, sanitize } from './markdown';
import { TOO_LARGE } from './math';

/** dom renders markdown into a detached element, the way the app inserts it. */
function dom(src: string): HTMLElement {
  const el = document.createElement('div');
  el.innerHTML = renderMarkdown(src);
  return el;
}

/** assertInert fails when el holds anything a browser could execute. */
function assertInert(el: HTMLElement): void {
  expect(el.querySelectorAll('script, iframe, frame, object, embed, form, style, link, meta, base').length).toBe(0);
  for (const node of Array.from(el.querySelectorAll('*'))) {
    for (const attr of Array.from(node.attributes)) {
      expect(attr.name.toLowerCase().startsWith('on'), `${node.tagName} has ${attr.name}`).toBe(false);
      expect(attr.name.toLowerCase()).not.toBe('srcdoc');
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attr.name.toLowerCase())) {
        const v = attr.value.replace(/[\s\u0000-\u001f]/g, '').toLowerCase();
        expect(v.startsWith('javascript:'), `${attr.name}=${attr.value}`).toBe(false);
        expect(v.startsWith('vbscript:'), `${attr.name}=${attr.value}`).toBe(false);
        expect(v.startsWith('data:'), `${attr.name}=${attr.value}`).toBe(false);
      }
    }
  }
}

beforeEach(() => clearMarkdownCache());

describe('code fences', () => {
  it('highlights a fence with a known language and labels it', () => {
    const el = dom('```js\nconst a = 1;\n```');
    const code = el.querySelector('pre code')!;
    expect(code.className).toBe('hljs language-js');
    expect(code.querySelector('.hljs-keyword')?.textContent).toBe('const');
    expect(el.querySelector('.code-lang')?.textContent).toBe('js');
    expect(el.querySelector('button.code-copy')).not.toBeNull();
    expect(code.textContent).toBe('const a = 1;\n');
  });

  it('shows code without a language escaped and unhighlighted', () => {
    const el = dom('```\n<b>bold</b> & <script>x</script>\n```');
    const code = el.querySelector('pre code')!;
    expect(code.querySelector('span')).toBeNull();
    expect(code.querySelector('b')).toBeNull();
    expect(code.textContent).toBe('<b>bold</b> & <script>x</script>\n');
    expect(el.querySelector('.code-lang')?.textContent).toBe('text');
    assertInert(el);
  });

  it('falls back to plaintext for an unknown language', () => {
    const el = dom('```nosuchlang\nif (a < b) { x() }\n```');
    const code = el.querySelector('pre code')!;
    expect(code.className).toBe('hljs language-nosuchlang');
    expect(code.querySelector('span')).toBeNull();
    expect(code.textContent).toBe('if (a < b) { x() }\n');
  });

  it('takes only the first word of the info string', () => {
    const el = dom('```python title="x"\nprint(1)\n```');
    expect(el.querySelector('pre code')!.className).toBe('hljs language-python');
  });
});

describe('text', () => {
  it('turns single newlines into <br> (breaks)', () => {
    const el = dom('line one\nline two');
    expect(el.querySelectorAll('p br').length).toBe(1);
  });

  it('renders GFM tables', () => {
    const el = dom('| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |');
    expect(el.querySelectorAll('table thead th').length).toBe(2);
    expect(el.querySelectorAll('table tbody tr').length).toBe(2);
    expect(el.querySelector('tbody td')?.textContent).toBe('1');
  });

  it('renders inline math', () => {
    const el = dom('Euler: $e^{i\\pi} + 1 = 0$ holds.');
    expect(el.querySelector('p .katex')).not.toBeNull();
    expect(el.querySelector('.katex-display')).toBeNull();
    expect(el.querySelector('annotation')?.textContent).toBe('e^{i\\pi} + 1 = 0');
  });

  it('renders block math', () => {
    const el = dom('Before\n\n$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n\nAfter');
    expect(el.querySelector('.math-block .katex-display')).not.toBeNull();
    expect(el.textContent).toContain('After');
  });

  it('does not turn prices into math', () => {
    const el = dom('It costs $5 and $10, or between $5-$10.');
    expect(el.querySelector('.katex')).toBeNull();
    expect(el.textContent?.trim()).toBe('It costs $5 and $10, or between $5-$10.');
  });

  it('shows bad TeX as an error without throwing', () => {
    const el = dom('$\\frac{1$ and $$\\begin{x}$$');
    assertInert(el);
    expect(el.textContent).toContain('frac');
  });

  // KaTeX's maxSize caps only positive sizes: these drew a message
  // 33,554,432 px tall, or pushed text far out sideways.
  const tooLarge: Array<[string, string]> = [
    ['a rule lowered far', '$\\rule[-10000000em]{0em}{0em}$'],
    ['a box lowered far', '$\\raisebox{-1000em}{x}$'],
    ['a negative hspace', '$\\hspace{-500em}$'],
    ['a negative mkern', '$$\\mkern-9000mu$$'],
    ['a negative kern in points', '$x\\kern-1000pt y$'],
    ['a negative row gap', '$$\\begin{aligned}a\\\\[-30em]b\\end{aligned}$$'],
    ['a negative kern from a macro', '$\\def\\k{\\kern-30em}\\k x$'],
    ['a negative kern made larger by \\Huge', '$\\Huge\\rule[-19em]{1em}{1em}$'],
    // Each below 20em, adding up far beyond it.
    ['40 nested boxes each lowered 19em', `$${'\\raisebox{-19em}{'.repeat(40)}x${'}'.repeat(40)}$`],
    ['40 row gaps of -19em', `$$\\begin{aligned}${'a\\\\[-19em]'.repeat(40)}b\\end{aligned}$$`],
    ['30 kerns of -19em from macros', '$\\def\\a{\\kern-19em\\kern-19em}\\def\\b{\\a\\a\\a\\a}\\def\\c{\\b\\b\\b\\b}\\c\\c x$'],
    // The branch of a \mathchoice that is drawn.
    ['a \\mathchoice with a kern of -30em', '$\\mathchoice{\\kern-30em}{}{}{} x$'],
    ['\\mathchoices adding up', `$${'\\mathchoice{\\kern-19em}{\\kern-19em}{}{}'.repeat(6)} x$`],
    // Positive vertical lengths add up too.
    ['40 nested boxes each raised 19em', `$${'\\raisebox{19em}{'.repeat(40)}x${'}'.repeat(40)}$`],
    ['40 row gaps of 19em', `$$\\begin{aligned}${'a\\\\[19em]'.repeat(40)}b\\end{aligned}$$`],
    // Rows \arraystretch times as tall: 240,000em.
    ['a matrix stretched 100,000 times', '$$\\def\\arraystretch{100000}\\begin{matrix}a\\\\b\\end{matrix}$$'],
    // Positive horizontal lengths add up too (apart, to 1000em): macros
    // made 20,000 kerns of 20em under \Huge, 995,000em, 2 MB of HTML.
    [
      '20,000 kerns of 20em from macros',
      `$\\def\\a{${'\\kern20em'.repeat(50)}}\\def\\b{${'\\a'.repeat(10)}}\\def\\c{${'\\b'.repeat(10)}}\\def\\d{\\c\\c\\c\\c}\\Huge x\\d y$`,
    ],
  ];
  for (const [name, src] of tooLarge) {
    it(`shows math with ${name} as its source`, () => {
      const el = dom(src);
      const shown = el.querySelector('.katex-error');
      expect(shown?.textContent).toBe(src.replace(/^\$+|\$+$/g, ''));
      expect(shown?.getAttribute('title')).toBe(TOO_LARGE);
      expect(el.querySelector('.katex')).toBeNull();
      for (const styled of el.querySelectorAll('[style]')) expect(styled.getAttribute('style')).not.toMatch(/\d{3,}(?:\.\d+)?em/);
    });
  }

  it('renders math with ordinary lengths and spacing', () => {
    const src =
      '$$\\begin{pmatrix}1 & 2\\\\[2pt] 3 & 4\\end{pmatrix}\\quad \\frac{a}{b}\\qquad x\\!y\\,z\\kern-0.5em w\\raisebox{-1em}{v}\\hspace{-2em}\\mkern-18mu\\rule[-1em]{1em}{2em}$$';
    const el = dom(src);
    expect(el.querySelector('.katex-error')).toBeNull();
    expect(el.querySelector('.math-block .katex-display .katex-html')).not.toBeNull();
  });

  // maxSize caps a positive length (to 20em): such formulas rendered before
  // lengths were bounded, and render still.
  it.each([
    ['a wide rule', '$\\rule{25em}{0.4pt}$'],
    ['a wide space', '$a\\hspace{21em}b$'],
    ['a rule beyond the cap', '$\\rule{1000em}{1000em}$'],
    // 200 of \! and 200 of \, (what they expand to: \mkern∓3mu; maxExpand
    // allows some 80 of the macros in one formula): 67em in all.
    ['a long formula with many small spaces', `$$${'x\\!y\\,'.repeat(50)}${'x\\mkern-3mu y\\mkern3mu '.repeat(150)}z$$`],
    // A positive horizontal space widens the formula as its text does (a
    // display formula scrolls sideways in .math-block): counted apart, to
    // 1000em in all. 60
    // lines of 4em each (\quad 1em, \qquad 2em): 240em across rows that
    // never line up.
    [
      'a derivation of 60 aligned lines',
      `$$\\begin{aligned}${Array.from({ length: 60 }, (_, i) => `x_{${i}} &= a_{${i}} + b_{${i}} \\quad\\Rightarrow\\quad y_{${i}} = 2x_{${i}} \\qquad\\text{(from eq. ${i})}`).join(' \\\\ ')}\\end{aligned}$$`,
    ],
    // \pmod's space is a \mathchoice of four (18mu or 8mu) of which one is drawn.
    ['45 of \\pmod', `$$${Array.from({ length: 45 }, (_, i) => `a_{${i}} \\equiv ${i} \\pmod{7}`).join(', ')}$$`],
    ['wide spaces in a row', `$$${'x\\hspace{20em}'.repeat(10)}$$`],
    // Four branches of -5em, one drawn: 30em, not 120em.
    ['\\mathchoices of negative kerns', `$$x${'\\mathchoice{\\kern-5em}{\\kern-5em}{\\kern-5em}{\\kern-5em}'.repeat(6)}y$$`],
    ['a matrix stretched a little', `$$\\def\\arraystretch{1.5}\\begin{pmatrix}${'a & b\\\\'.repeat(40)}\\end{pmatrix}$$`],
  ])('renders math with %s', (_, src) => {
    const el = dom(src);
    expect(el.querySelector('.katex-error')).toBeNull();
    expect(el.querySelector('.katex-html')).not.toBeNull();
  });

  it('keeps dollar signs inside code spans', () => {
    const el = dom('Run `echo $HOME$x` now');
    expect(el.querySelector('code')?.textContent).toBe('echo $HOME$x');
    expect(el.querySelector('.katex')).toBeNull();
  });
});

describe('headings', () => {
  // The conversation's title is the page's h1: an answer's # was an h1 too,
  // its headings ranked with the page's own.
  it.each([
    ['# One', 'h3'],
    ['## Two', 'h4'],
    ['### Three', 'h5'],
    ['#### Four', 'h6'],
    ['###### Six', 'h6'],
    ['Setext\n===', 'h3'],
    ['Setext\n---', 'h4'],
  ])('%j is an <%s>', (src, tag) => {
    const html = renderMarkdown(src);
    expect(html).toMatch(new RegExp(`^<${tag} dir="auto">[^<]+</${tag}>\\s*$`));
    expect(renderBlocks(src).join('')).toBe(html);
  });

  it('keeps the inline markup of a heading', () => {
    expect(renderMarkdown('# A *b* `c`')).toContain('<h3 dir="auto">A <em>b</em> <code dir="auto">c</code></h3>');
  });
});

describe('links and images', () => {
  it('opens links in a new tab without opener', () => {
    const a = dom('[docs](https://example.com/a?b=1)').querySelector('a')!;
    expect(a.getAttribute('href')).toBe('https://example.com/a?b=1');
    expect(a.getAttribute('target')).toBe('_blank');
    expect(a.getAttribute('rel')).toBe('noopener noreferrer');
  });

  it('autolinks bare URLs with the same attributes', () => {
    const a = dom('see https://example.org now').querySelector('a')!;
    expect(a.getAttribute('rel')).toBe('noopener noreferrer');
  });

  it('turns https images into a placeholder naming the host, with no <img> and nothing fetched', () => {
    const el = dom('![cat](https://img.example/cat.png?secret=a%20b) ![dog](http://img.example/dog.png) ![x](data:image/png;base64,AAAA)');
    expect(el.querySelectorAll('img').length).toBe(0);
    const buttons = el.querySelectorAll<HTMLButtonElement>('button.remote-image');
    expect(buttons.length).toBe(1);
    expect(buttons[0]!.dataset.src).toBe('https://img.example/cat.png?secret=a%20b');
    expect(buttons[0]!.dataset.alt).toBe('cat');
    expect(buttons[0]!.textContent).toBe('Image from img.example: cat. Click to load it from that site.');
    expect(el.textContent).toContain('dog');
    assertInert(el);
  });

  // marked hands destinations and titles over with their character
  // references as written; escaping them again sent ?a=1&amp;b=2 to the
  // browser as a parameter "amp;b".
  const decodedLinks: Array<[string, string, string | null]> = [
    ['a named reference in a destination', '[x](https://a.com/?a=1&amp;b=2)', 'https://a.com/?a=1&b=2'],
    ['decimal and hex references', '[x](https://a.com/caf&#233;/&#x3F;q)', 'https://a.com/caf\u00e9/?q'],
    ['a name beyond the basic few', '[x](https://a.com/&copy;&NotEqualTilde;)', 'https://a.com/\u00a9\u2242\u0338'],
    ['zero and a number past Unicode', '[x](https://a.com/&#0;&#x110000;)', 'https://a.com/\ufffd\ufffd'],
    ['unknown names and a missing semicolon, as written', '[x](https://a.com/?x=&ampx;&notit;&bogus;&amp)', 'https://a.com/?x=&ampx;&notit;&bogus;&amp'],
    ['a reference definition', '[x][r]\n\n[r]: https://a.com/?a=1&amp;b=2', 'https://a.com/?a=1&b=2'],
    ['an autolink', '<https://a.com/?a=1&amp;b=2>', 'https://a.com/?a=1&b=2'],
    ['a bare URL', 'see https://a.com/?a=1&amp;b=2 now', 'https://a.com/?a=1&b=2'],
    ['a relative link', '[x](?a=1&amp;b=2)', '?a=1&b=2'],
    ['a relative link written twice (&amp;amp;): no link', '[x](p?a=1&amp;amp;b=2)', null],
    ['jav&#x61;script:', '[x](jav&#x61;script:alert(1))', null],
    ['&#106;avascript:', '[x](&#106;avascript:alert(1))', null],
    ['javascript&colon;', '[x](javascript&colon;alert(1))', null],
    ['a newline reference inside javascript:', '[x](java&#10;script:alert(1))', null],
    ['data&colon;', '[x](data&colon;text/html,x)', null],
  ];
  for (const [name, src, want] of decodedLinks) {
    it(`decodes the references of a link once: ${name}`, () => {
      const el = dom(src);
      const a = el.querySelector('a');
      if (want === null) {
        expect(a, el.innerHTML).toBeNull();
        expect(el.textContent).toContain('x');
      } else {
        expect(a?.getAttribute('href'), el.innerHTML).toBe(want);
      }
      assertInert(el);
    });
  }

  it('decodes the references of a link title once', () => {
    const a = dom('[x](https://a.com/ "Tom &amp; Jerry &#x26; &lt;co&gt;")').querySelector('a')!;
    expect(a.getAttribute('title')).toBe('Tom & Jerry & <co>');
  });

  it('decodes the references of an image once and names the decoded URL\'s host', () => {
    const el = dom('![cat &amp; dog](https://img.example/p.png?a=1&amp;b=2) ![x](https://img.example&#64;evil.example/a.png)');
    const [cat, trick] = Array.from(el.querySelectorAll<HTMLButtonElement>('button.remote-image'));
    expect(cat!.dataset.src).toBe('https://img.example/p.png?a=1&b=2');
    expect(cat!.title).toBe('Load https://img.example/p.png?a=1&b=2');
    expect(cat!.dataset.alt).toBe('cat & dog');
    expect(cat!.textContent).toBe('Image from img.example: cat & dog. Click to load it from that site.');
    // &#64; is @: the image comes from evil.example, and the button says so.
    expect(trick!.dataset.src).toBe('https://img.example@evil.example/a.png');
    expect(trick!.textContent).toBe('Image from evil.example: x. Click to load it from that site.');
    assertInert(el);
  });

  it('refuses an image whose decoded URL is not https', () => {
    const el = dom('![a &amp; b](&#x6a;avascript:alert(1)) ![c](http&#x3a;//img.example/c.png)');
    expect(el.querySelectorAll('button, img').length).toBe(0);
    expect(el.textContent).toContain('a & b');
    assertInert(el);
  });

  it('drops an <img> that reaches the sanitizer', () => {
    const el = document.createElement('div');
    el.innerHTML = sanitize('<p><img src="https://img.example/a.png">x</p>');
    expect(el.querySelectorAll('img').length).toBe(0);
  });
});

describe('XSS payloads produce no executable markup', () => {
  const payloads: Array<[string, string]> = [
    ['script tag', '<script>window.__xss = 1</script>'],
    ['img onerror', '<img src=x onerror="window.__xss=1">'],
    ['svg onload', '<svg onload="window.__xss=1"><circle r="1"/></svg>'],
    ['javascript link', '[click](javascript:window.__xss=1)'],
    ['javascript link with spaces and case', '[click]( JaVaScRiPt:alert(1) )'],
    ['entity-encoded javascript link', '[click](javascript&#58;alert(1))'],
    ['entity-encoded javascript scheme letters', '[click](jav&#x61;script:alert(1)) [c](&#x6A;&#x61;vascript&colon;alert(1))'],
    ['entity-encoded javascript image', '![x](&#106;avascript:alert(1))'],
    ['vbscript link', '[click](vbscript:msgbox(1))'],
    ['data link', '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)'],
    ['iframe srcdoc', '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>'],
    ['html inside link text', '[<img src=x onerror=alert(1)>](https://example.com)'],
    ['html inside link title', '[a](https://example.com "x\\" onmouseover=\\"alert(1)")'],
    ['autolink javascript', '<javascript:alert(1)>'],
    ['image with javascript', '![x](javascript:alert(1))'],
    ['data image', '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)'],
    ['inline html in paragraph', 'hello <a href="javascript:alert(1)">x</a> <b onclick=alert(1)>b</b>'],
    ['html block', '<div>\n<style>body{display:none}</style>\n<form action="https://evil"><input></form>\n</div>'],
    ['object and embed', '<object data="x.swf"></object><embed src="x.swf">'],
    ['math href', '$\\href{javascript:alert(1)}{x}$ and $$\\url{javascript:alert(2)}$$'],
    ['details ontoggle', '<details open ontoggle=alert(1)>'],
    ['meta refresh', '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'],
  ];
  for (const [name, src] of payloads) {
    it(name, () => {
      const el = dom(src);
      assertInert(el);
    });
  }

  it('shows raw HTML as text', () => {
    const el = dom('<script>alert(1)</script>');
    expect(el.textContent).toContain('<script>alert(1)</script>');
  });

  it('keeps link text but drops a javascript href', () => {
    const el = dom('[click me](javascript:alert(1))');
    expect(el.querySelector('a')).toBeNull();
    expect(el.textContent).toContain('click me');
  });
});

describe('renderBlocks', () => {
  it('re-renders only the growing tail', () => {
    const head = '# Title\n\nFirst paragraph.\n\n```go\nfunc main() {}\n```\n\n';
    const a = renderBlocks(head + 'Growing tex');
    const b = renderBlocks(head + 'Growing text here');
    expect(a.length).toBe(b.length);
    expect(a.slice(0, -1)).toEqual(b.slice(0, -1));
    expect(a[a.length - 1]).not.toEqual(b[b.length - 1]);
  });

  it('renders an unclosed fence while streaming', () => {
    const el = dom('```ts\nconst x = 1;\n');
    expect(el.querySelector('pre code.language-ts')).not.toBeNull();
  });

  it('resolves reference links defined later', () => {
    const a = dom('See [the docs][d].\n\n[d]: https://example.com/docs').querySelector('a');
    expect(a?.getAttribute('href')).toBe('https://example.com/docs');
  });
});

describe('the block cache', () => {
  /** A Python module in one fence, as "write me the whole module" streams it. */
  function moduleAnswer(): string {
    let code = '';
    for (let i = 0; code.length < 8000; i++) code += `def handler_${i}(request, *args, **kwargs):  # handles case ${i}\n    return process(request, ${i})\n`;
    return 'Here is the module:\n\n```python\n' + code + '```\n';
  }

  it('keeps no version of the growing last block while an answer streams', () => {
    const doc = moduleAnswer();
    for (let cut = 200; cut < doc.length; cut += 200) renderBlocks(doc.slice(0, cut), true);
    // Only the finished first paragraph: every render's code block was the growing tail.
    expect(markdownCacheSize().entries).toBe(1);
    expect(markdownCacheSize().chars).toBeLessThan(200);
    renderBlocks(doc); // ended: now the whole block is kept
    expect(markdownCacheSize().entries).toBe(2);
  });

  it('still caches the finished blocks of a streaming answer', () => {
    const head = '# Title\n\nFirst paragraph.\n\n';
    renderBlocks(head + 'Growing tex', true);
    expect(markdownCacheSize().entries).toBe(2);
    renderBlocks(head + 'Growing text here', true);
    expect(markdownCacheSize().entries).toBe(2);
  });

  it('holds at most about 8 MB of source and HTML, dropping the oldest blocks', () => {
    const para = (i: number) => `Paragraph ${i}: ` + 'lorem ipsum dolor sit amet '.repeat(4000) + '\n\n';
    const first = renderBlocks(para(0));
    for (let i = 1; i < 25; i++) renderBlocks(para(i));
    const { entries, chars } = markdownCacheSize();
    expect(chars).toBeLessThanOrEqual(4_000_000);
    expect(entries).toBeLessThan(25);
    expect(entries).toBeGreaterThan(5);
    expect(renderBlocks(para(0))).toEqual(first); // dropped, it renders the same again
    clearMarkdownCache();
    expect(markdownCacheSize()).toEqual({ entries: 0, chars: 0 });
  });
});

describe('task lists', () => {
  it('tells a done item from an open one, in words for assistive tech', () => {
    const done = dom('- [x] a');
    const open = dom('- [ ] a');
    expect(done.innerHTML).not.toBe(open.innerHTML);
    const d = done.querySelector('li [role="img"]');
    const o = open.querySelector('li [role="img"]');
    expect(d?.getAttribute('aria-label')).toBe('done');
    expect(o?.getAttribute('aria-label')).toBe('not done');
    expect(d?.textContent).toBe('\u2611');
    expect(o?.textContent).toBe('\u2610');
    expect(done.querySelector('li')?.textContent).toContain('a');
  });

  it('renders loose task items too', () => {
    const el = dom('- [x] one\n\n- [ ] two');
    expect(Array.from(el.querySelectorAll('[role="img"]'), (n) => n.getAttribute('aria-label'))).toEqual(['done', 'not done']);
  });

  it('still forbids inputs written as HTML', () => {
    for (const src of ['<input type="text" value="x">', 'a <input type="checkbox" disabled checked> b', '- [x] <input type="text">']) {
      expect(dom(src).querySelector('input')).toBeNull();
    }
    expect(sanitize('<input type="text"><input type="checkbox" disabled>')).not.toContain('<input');
  });
});

describe('the direction of an answer\'s text', () => {
  // Laid out left to right, a Hebrew line's trailing "!" showed at its
  // start and mixed runs were misordered. Each block takes the direction
  // of its own text; code and math read left to right inside right-to-left text.
  const answer = 'שלום עולם!\n\nEnglish paragraph.\n\n- פריט `x()` ראשון\n- second item\n\n> ציטוט\n\n| עמודה | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst a = 1;\n```\n\n$x^2$ ו-$$\ny\n$$';

  it('gives each paragraph, heading, list, item, quote, table and cell dir=auto, inline code dir=auto, code blocks and math dir=ltr', () => {
    const el = dom(`# כותרת\n\n${answer}`);
    const dirs = (sel: string) => [...el.querySelectorAll(sel)].map((n) => n.getAttribute('dir'));
    expect(dirs('h3')).toEqual(['auto']); // # is an h3 (headings)
    expect(dirs('p').every((d) => d === 'auto')).toBe(true);
    expect(dirs('ul, li, blockquote, table, th, td').every((d) => d === 'auto')).toBe(true);
    expect(dirs('li code')).toEqual(['auto']);
    expect(dirs('.code-block')).toEqual(['ltr']);
    expect(dirs('pre, pre code')).toEqual([null, null]); // within the code block's ltr
    expect(dirs('.katex').length).toBeGreaterThan(0);
    expect(dirs('.katex').every((d) => d === 'ltr')).toBe(true);
  });

  it('is the same while the answer streams, an open code block included', () => {
    const growing = renderBlocks('שלום!\n\n```js\nconst a', true).join('');
    const el = document.createElement('div');
    el.innerHTML = growing;
    expect(el.querySelector('p')?.getAttribute('dir')).toBe('auto');
    expect(el.querySelector('.code-block')?.getAttribute('dir')).toBe('ltr');
  });
});
