import { describe, expect, it } from 'vitest';
import { clearMarkdownCache, renderBlocks } from './markdown';

/** longAnswer builds a markdown answer of roughly `tokens` model tokens (~4 chars each) with many code blocks. */
function longAnswer(tokens: number): string {
  const parts: string[] = [];
  let chars = 0;
  for (let i = 0; chars < tokens * 4; i++) {
    const part =
      `## Step ${i}\n\nHere is **part ${i}** of the answer, with \`inline code\`, a [link](https://example.com/${i}) and a list:\n\n` +
      `- first item ${i}\n- second item with $x_${i}^2$\n- third item\n\n` +
      '```' + ['ts', 'go', 'python', 'bash', 'rust'][i % 5] + '\n' +
      Array.from({ length: 8 }, (_, j) => `const value${j} = compute(${i}, ${j}); // comment ${j}`).join('\n') +
      '\n```\n\n' +
      (i % 4 === 0 ? '| col a | col b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n' : '');
    parts.push(part);
    chars += part.length;
  }
  return parts.join('');
}

/**
 * cpuMs is the CPU time (user and system) this test process spent, in ms.
 * The bounds below are on it, not on the wall clock: on a machine busy with
 * other work (the Go tests, other test files) the wall clock also counts
 * the time this process waited for a core, and failed the bounds with no
 * change in the code.
 */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

describe('markdown performance (sanity bounds on CPU time, deliberately generous)', () => {
  const doc = longAnswer(5000);

  it('renders a 5,000-token answer with many code blocks from a cold cache', () => {
    clearMarkdownCache();
    const t0 = cpuMs();
    const blocks = renderBlocks(doc);
    const cold = cpuMs() - t0;
    console.log(`cold render, CPU time: ${cold.toFixed(1)} ms, ${doc.length} chars, ${blocks.length} blocks`);
    expect(blocks.length).toBeGreaterThan(100);
    expect(cold).toBeLessThan(3000);
  });

  it('a full re-parse without the cache (warm) stays within the budget too', () => {
    renderBlocks(doc); // warm the JIT and highlight.js
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      clearMarkdownCache();
      const t0 = cpuMs();
      renderBlocks(doc);
      times.push(cpuMs() - t0);
    }
    const best = Math.min(...times);
    console.log(`full re-parse (no cache), CPU time: best ${best.toFixed(1)} ms of ${times.map((t) => t.toFixed(0)).join(', ')}`);
    expect(best).toBeLessThan(1500);
  });

  it('re-renders a growing answer quickly (what streaming does at ~20 Hz)', () => {
    clearMarkdownCache();
    const steps = 200;
    const times: number[] = [];
    for (let i = 1; i <= steps; i++) {
      const cut = Math.floor((doc.length * i) / steps);
      const t0 = cpuMs();
      renderBlocks(doc.slice(0, cut));
      times.push(cpuMs() - t0);
    }
    const avg = times.reduce((a, b) => a + b, 0) / times.length;
    const tail = times.slice(-20).reduce((a, b) => a + b, 0) / 20;
    console.log(`streaming re-render, CPU time: avg ${avg.toFixed(2)} ms, last 20 avg ${tail.toFixed(2)} ms, max ${Math.max(...times).toFixed(1)} ms`);
    // The budget is ~100 ms; on this 2-core machine the measured average is a few ms.
    expect(tail).toBeLessThan(100);
    expect(avg).toBeLessThan(100);
  });
});
