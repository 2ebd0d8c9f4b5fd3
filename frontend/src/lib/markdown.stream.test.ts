// A growing answer's rendering (renderGrowing): what it shows at every step
// is what a full render of the same text shows (the open code block only
// unhighlighted), its end is exactly a one-shot render, and an update costs
// about the new text, counted in characters lexed, highlighted and
// sanitized rather than timed.

import { beforeEach, describe, expect, it } from 'vitest';
import { clearMarkdownCache, markdownWork, renderBlocks, resetMarkdownWork } from './markdown';

beforeEach(() => clearMarkdownCache());

/** Documents whose blocks join, split or change meaning as text arrives. */
const documents: Array<[string, string]> = [
  ['prose and fences', '# Title\n\nFirst *paragraph* with `code`.\n\n```ts\nconst a = 1;\n\nconst b = 2;\n```\n\nAfter the code.\n\n~~~\nplain ``` text\n~~~\nright after\n'],
  ['a loose ordered list', 'Steps:\n\n1. one\n\n2. two\n\n10. ten\n\nDone.\n\n3) other\n'],
  ['bullets that continue', '- a\n- b\n\n- c\n\n  still c\n\n* new list\n\n+ another\n-\n\ntext\n'],
  ['lists with code', '1. run:\n\n   ```bash\n   make\n\n   make test\n   ```\n\n2. then\n\n```\nx\n```\n'],
  ['setext, rules and tables', 'Heading\n===\n\ntext\n---\n\n---\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\n\npara\n| x |\n|---|\n| y |\n'],
  ['math', 'Inline $x^2$ and $$\n\\int_0^1 x\\,dx\n$$\n\nThen $$\na\n\nb\n$$\n\nPrices $5 and $$10.\n\n$$x$$\nend\n'],
  ['display math over blank lines', 'Before.\n\n$$\na = 1\n\nb = 2\n$$\n\nAfter.\n'],
  ['display math closed inside a fence', 'Say\n$$\nx\n```py\ncode $$\nmore\n'],
  ['html blocks', '<div>\nhello\n\nworld\n</div>\n\n<pre>\nkeep\n\nthis\n</pre>\n\n<!-- a\n\ncomment -->\n\nafter <b>bold</b>\n'],
  ['indented code', 'para\n    not code\n\n    code\n\n    more code\n\nend\n'],
  ['blockquotes', '> quote\nlazy line\n\n> second\n\n>> nested\n\nout\n'],
  ['nested fences', 'Markdown:\n\n````md\n```js\nx()\n```\n\n````\n\n```\n``\n````\n\nafter\n'],
  ['a reference definition', 'See [the docs][d] and [more].\n\n[d]: https://example.com/docs\n\n[more]: https://example.com/more "More"\n\nend\n'],
  ['carriage returns and tabs', 'one\r\ntwo\r\n\r\n```py\r\nx = 1\r\n\r\n```\r\n\r\n\tcode\r\n'],
  ['an unclosed fence at the end', 'Intro\n```python\ndef f():\n    return "<b>&</b>"\n\n\n# tail'],
];

/** steps cuts text into prefixes, n characters apart, ending with the whole. */
function steps(text: string, n: number): string[] {
  const out: string[] = [];
  for (let cut = n; cut < text.length; cut += n) out.push(text.slice(0, cut));
  out.push(text);
  return out;
}

function el(html: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = html;
  return div;
}

/** sameBlock: equal HTML, or the same code block (label and text) when the growing one is shown unhighlighted. */
function expectSameBlock(got: string, want: string, where: string): void {
  if (got === want) return;
  const g = el(got);
  const w = el(want);
  expect(g.querySelector('pre code'), where).not.toBeNull();
  expect(g.querySelector('.code-lang')?.textContent, where).toBe(w.querySelector('.code-lang')?.textContent);
  expect(g.querySelector('pre code')?.className, where).toBe(w.querySelector('pre code')?.className);
  expect(g.textContent, where).toBe(w.textContent);
}

/** expectStreamedAsFull: prefix rendered as it streams gives the blocks a full render (which lexes the whole text) gives. */
function expectStreamedAsFull(prefix: string): void {
  const got = renderBlocks(prefix, true);
  const want = renderBlocks(prefix);
  const where = JSON.stringify(prefix);
  expect(got.length, where).toBe(want.length);
  expect(got.slice(0, -1), where).toEqual(want.slice(0, -1));
  if (got.length) expectSameBlock(got.at(-1)!, want.at(-1)!, where);
}

describe('a growing answer renders as a full render does', () => {
  for (const [name, doc] of documents) {
    it.each([1, 3, 17])(`${name}, streamed %i characters at a time`, (n) => {
      for (const prefix of steps(doc, n)) {
        expectStreamedAsFull(prefix);
      }
    });
  }

  // A second answer sharing the first one's settled head (a regenerated
  // answer, another conversation's): the blocks were settled on text after
  // that head which the second answer does not have, and were reused for
  // it (a list item "a" then "pples" as a paragraph).
  it.each([
    ['a list continued otherwise', '1. a\n\nDone.\n\nEnd', '1. apples\n2. pears\n\nok\n'],
    ['a paragraph continued otherwise', 'Sure.\n\nEnd\n\nmore', 'Sure.\nMore of it\n\nok\n'],
  ])('%s: a second answer sharing the first one\'s head renders as a full render does', (_, first, second) => {
    for (const prefix of steps(first, 1)) renderBlocks(prefix, true);
    for (const prefix of steps(second, 1)) {
      expectStreamedAsFull(prefix);
    }
  });

  // Random documents of pieces that join, split or reinterpret blocks,
  // from a fixed seed: 400 seeds passed while this was written, and
  // settling a block before the next one's first line is complete fails
  // on the second.
  const pieces = ['\n', '\n\n', '- a', '* b', '+ c', '1. x', '2. y', '10) z', '  cont', '    code', '```', '```py', '~~~', '````', '$$', '$x$', '$$5', 'text', '# h', '===', '---', '| a | b |', '|---|---|', '> q', '<div>', '</div>', '<pre>', '</pre>', '<!--', '-->', '**b', '**', '\t', ' ', '`', 'def f():'];
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('random document %i, streamed a character at a time', (seed) => {
    let state = seed;
    const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let doc = '';
    for (let i = 0; i < 25; i++) doc += pieces[Math.floor(random() * pieces.length)] + (random() < 0.6 ? '\n' : random() < 0.5 ? '\n\n' : '');
    for (const prefix of steps(doc, 1)) {
      expectStreamedAsFull(prefix);
    }
  });

  it('ends exactly as a one-shot render, for every document', () => {
    for (const [name, doc] of documents) {
      clearMarkdownCache();
      for (const prefix of steps(doc, 5)) renderBlocks(prefix, true);
      const streamed = renderBlocks(doc); // the answer ended
      clearMarkdownCache();
      expect(streamed, name).toEqual(renderBlocks(doc));
    }
  });

  it('starts over when the text is replaced rather than extended', () => {
    renderBlocks('First answer.\n\n```js\nlet a = 1;\n', true);
    const got = renderBlocks('Second.\n\n```js\nlet b', true);
    expect(got).toEqual(renderBlocks('Second.\n\n```js\nlet b', true));
    expect(el(got.join('')).textContent).not.toContain('First');
    expect(el(got.join('')).textContent).toContain('let b');
  });

  it('keeps two answers growing side by side apart', () => {
    const a = 'Answer A.\n\n```py\n' + 'print("a")\n'.repeat(300);
    const b = 'Answer B.\n\n```go\n' + 'fmt.Println("b")\n'.repeat(300);
    for (let cut = 20; cut < a.length; cut += 97) {
      expect(el(renderBlocks(a.slice(0, cut), true).join('')).textContent).toBe(el(renderBlocks(a.slice(0, cut)).join('')).textContent);
      expect(el(renderBlocks(b.slice(0, cut), true).join('')).textContent).toBe(el(renderBlocks(b.slice(0, cut)).join('')).textContent);
    }
  });
});

describe('a growing answer stays inert', () => {
  const payload = '<script>window.__xss=1</script><img src=x onerror=alert(1)></code></pre><iframe srcdoc="x"></iframe>';
  const cases: Array<[string, string]> = [
    ['in an open code block', 'Look:\n\n```html\n' + (payload + '\n').repeat(60)],
    ['in an open code block without a language', '```\n' + (payload + '\n').repeat(60)],
    ['in prose', ('Text ' + payload + ' [x](javascript:alert(1))\n\n').repeat(20)],
  ];
  for (const [name, doc] of cases) {
    it(name, () => {
      for (const prefix of steps(doc, 41)) {
        const root = el(renderBlocks(prefix, true).join(''));
        expect(root.querySelectorAll('script, img, iframe').length).toBe(0);
        for (const node of Array.from(root.querySelectorAll('*'))) {
          for (const attr of Array.from(node.attributes)) expect(attr.name.startsWith('on')).toBe(false);
          expect(node.getAttribute('href') ?? '').not.toMatch(/^javascript:/i);
        }
      }
    });
  }
});

/** Work is what one update of a growing answer cost, in characters. */
interface Work {
  chars: number; // of the text when rendered
  step: number; // characters added since the previous update
  lexed: number;
  highlighted: number;
  sanitized: number;
}

/**
 * stream renders a growing answer n characters at a time and returns each
 * update's work. It fails as soon as more than `allowed` updates cost more
 * than `bound` says (without the incremental rendering the work grows with
 * the answer, and the whole stream would take minutes).
 */
function stream(doc: string, n: number, bound: (w: Work) => boolean, allowed = 0): Work[] {
  const out: Work[] = [];
  let prev = 0;
  let over = 0;
  for (const prefix of steps(doc, n)) {
    resetMarkdownWork();
    renderBlocks(prefix, true);
    const w = { chars: prefix.length, step: prefix.length - prev, ...markdownWork() };
    out.push(w);
    prev = prefix.length;
    if (!bound(w) && ++over > allowed) expect.fail(`update at ${w.chars} of ${doc.length} characters cost ${JSON.stringify(w)}`);
  }
  return out;
}

function total(ws: Work[], key: 'lexed' | 'highlighted' | 'sanitized'): number {
  return ws.reduce((a, w) => a + w[key], 0);
}

describe('an update costs about the new text, not the whole answer', () => {
  it('a 60,000-character code block: not highlighted while open, its code lexed and sanitized about once', () => {
    let code = '';
    for (let i = 0; code.length < 60_000; i++) code += `def handler_${i}(request, *args):  # case ${i} <&>\n    return process(request, ${i})\n`;
    const doc = 'Here is the module:\n\n```python\n' + code + '```\n';
    // Each update sanitizes the new text and at most the code after the
    // last sealed chunk (1 KiB); only the few updates around the closing
    // fence lex and sanitize the whole block again (shown unhighlighted).
    const small = (w: Work) => w.highlighted === 0 && w.lexed + w.sanitized <= 4 * w.step + 2 * 1024 + 1000;
    const ws = stream(doc, 24, (w) => small(w) || (w.chars > code.length && w.highlighted === 0), 0);
    expect(ws.filter((w) => !small(w)).length).toBeLessThanOrEqual(4);
    expect(total(ws, 'lexed')).toBeLessThan(6 * doc.length);
    expect(total(ws, 'sanitized')).toBeLessThan(ws.length * (2 * 1024 + 24) + 6 * doc.length);
    // Ended: highlighted once, the whole block.
    resetMarkdownWork();
    renderBlocks(doc);
    expect(markdownWork().highlighted).toBe(code.length - 1);
  }, 60_000);

  it('a 20,000-token answer of prose and code: each update lexes and renders only its unsettled tail', () => {
    const parts: string[] = [];
    for (let i = 0, len = 0; len < 80_000; i++) {
      parts.push(
        i % 10 === 9
          ? '```ts\n' + Array.from({ length: 12 }, (_, j) => `const v${j} = f(${i}, ${j}); // ${j}`).join('\n') + '\n```\n\n'
          : `Paragraph ${i} says **something** with \`code\` and a [link](https://example.com/${i}), at some length so it reads like prose.\n\n`,
      );
      len += parts.at(-1)!.length;
    }
    const doc = parts.join('');
    const longest = Math.max(...parts.map((p) => p.length));
    const longestHtml = Math.max(...parts.slice(-10).map((p) => renderBlocks(p).join('').length));
    // The unsettled tail is at most the last two blocks: the growing one,
    // and the one before it until the growing one's first line is complete.
    // Each is rendered (lexed twice: for the tail, then alone) until it is
    // cached, once it is no longer the last.
    const tail = (w: Work) => w.step + 2 * longest;
    const ws = stream(doc, 200, (w) => w.lexed <= 2 * tail(w) && w.sanitized <= 4 * w.step + 2 * longestHtml && w.highlighted <= longest);
    expect(total(ws, 'lexed')).toBeLessThan(ws.length * 2 * (200 + 2 * longest));
  }, 60_000);
});
